//! The local Lambda service: the Lambda API the deployer calls, the uploaded code, running instances and function URLs.
