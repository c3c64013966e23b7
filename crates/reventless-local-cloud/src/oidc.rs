//! A local OIDC issuer for emulation: JWKS, discovery document and a token endpoint.
