//! Leases: each follower runs in exactly one process at a time.
