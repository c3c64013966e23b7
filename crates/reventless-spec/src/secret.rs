//! Secrets for capabilities (a mail service's API key, a payment gateway's
//! token): named in the project (`[secrets]` on AWS, the environment or
//! `.reventless/secrets.toml` locally), fetched on first use, cached for a
//! while, and handed out as a [`SecretValue`] that never prints itself.
//!
//! A component reads one through its capabilities
//! (`capabilities.secret("mail-api-key").await`); a capability built by the
//! composition root can keep the [`Secrets`] handle and resolve lazily.
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A secret's value. `Debug` prints it redacted and there is no `Display`:
/// formatting a value into a log line or an error takes an explicit
/// [`SecretValue::expose`].
#[derive(Clone)]
pub struct SecretValue(Arc<str>);

impl SecretValue {
    /// Wraps a secret's value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Arc::from(value.into()))
    }

    /// The value itself: hand it to the outside service, never to a log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// Why a secret could not be had. Every variant names the secret, none
/// carries its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret `{name}`: this platform has no secret source (the composition root provides none)")]
    /// No secret source at all.
    NotConfigured {
        /// The secret.
        name: String,
    },
    #[error(
        "secret `{name}` is not given to this function (its plugin's secrets: {given}); list it under `[plugins.<stack>] secrets` in reventless.toml"
    )]
    /// The secret exists on the stage but is not given to this function's plugin.
    NotGiven {
        /// The secret.
        name: String,
        /// The secrets the plugin was given.
        given: String,
    },
    #[error("secret `{name}` is not set ({looked})")]
    /// Not set where the platform looks.
    Missing {
        /// The secret.
        name: String,
        /// Where it was looked for.
        looked: String,
    },
    #[error("secret `{name}` cannot be read: {message}")]
    /// The source failed to answer.
    Unavailable {
        /// The secret.
        name: String,
        /// The source's error.
        message: String,
    },
}

impl SecretError {
    /// The secret the error is about.
    pub fn name(&self) -> &str {
        match self {
            Self::NotConfigured { name }
            | Self::NotGiven { name, .. }
            | Self::Missing { name, .. }
            | Self::Unavailable { name, .. } => name,
        }
    }
}

/// What fetching a secret returns.
pub type SecretFuture<'a> = Pin<Box<dyn Future<Output = Result<SecretValue, SecretError>> + Send + 'a>>;

/// Where a platform reads secrets from (SSM on AWS, the environment and a
/// file locally). [`Secrets`] caches what it returns.
pub trait SecretSource: Send + Sync + 'static {
    /// Reads the secret `name` (uncached).
    fn fetch<'a>(&'a self, name: &'a str) -> SecretFuture<'a>;
}

/// How long a fetched secret is used before it is fetched again (a rotated
/// value is picked up within this time).
pub const SECRET_TTL: Duration = Duration::from_secs(300);

struct Store {
    source: Box<dyn SecretSource>,
    ttl: Duration,
    cache: Mutex<HashMap<String, (SecretValue, Instant)>>,
}

/// The secrets a capability may use: a cheap handle (clones share one
/// cache). Without a source every read is [`SecretError::NotConfigured`].
#[derive(Clone, Default)]
pub struct Secrets(Option<Arc<Store>>);

impl Secrets {
    /// Reads from `source`, caching each value for [`SECRET_TTL`].
    pub fn new(source: impl SecretSource) -> Self {
        Self::with_ttl(source, SECRET_TTL)
    }

    /// Reads from `source`, caching each value for `ttl` (zero: every read fetches).
    pub fn with_ttl(source: impl SecretSource, ttl: Duration) -> Self {
        Self(Some(Arc::new(Store { source: Box::new(source), ttl, cache: Mutex::new(HashMap::new()) })))
    }

    /// Fixed values (tests, or a composition root holding them already).
    pub fn from_values<N: Into<String>, V: Into<String>>(values: impl IntoIterator<Item = (N, V)>) -> Self {
        let values = values.into_iter().map(|(name, value)| (name.into(), SecretValue::new(value))).collect();
        Self::with_ttl(Fixed(values), Duration::ZERO)
    }

    /// Whether a source is set (platforms install theirs only when not).
    pub fn is_configured(&self) -> bool {
        self.0.is_some()
    }

    /// The secret `name`: from the cache while fresh, else from the source.
    pub async fn get(&self, name: &str) -> Result<SecretValue, SecretError> {
        let Some(store) = &self.0 else {
            return Err(SecretError::NotConfigured { name: name.to_string() });
        };
        if !store.ttl.is_zero()
            && let Ok(cache) = store.cache.lock()
            && let Some((value, fetched)) = cache.get(name)
            && fetched.elapsed() < store.ttl
        {
            return Ok(value.clone());
        }
        let value = store.source.fetch(name).await?;
        if !store.ttl.is_zero()
            && let Ok(mut cache) = store.cache.lock()
        {
            cache.insert(name.to_string(), (value.clone(), Instant::now()));
        }
        Ok(value)
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets").field("configured", &self.is_configured()).finish_non_exhaustive()
    }
}

struct Fixed(HashMap<String, SecretValue>);

impl SecretSource for Fixed {
    fn fetch<'a>(&'a self, name: &'a str) -> SecretFuture<'a> {
        let found = self.0.get(name).cloned().ok_or_else(|| SecretError::Missing {
            name: name.to_string(),
            looked: "not among the fixed values".into(),
        });
        Box::pin(std::future::ready(found))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    struct Counting(Arc<AtomicUsize>);

    impl SecretSource for Counting {
        fn fetch<'a>(&'a self, name: &'a str) -> SecretFuture<'a> {
            let count = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            Box::pin(std::future::ready(Ok(SecretValue::new(format!("{name}-{count}")))))
        }
    }

    /// Runs a future that never waits (the sources here answer at once).
    fn now<T>(future: impl Future<Output = T>) -> T {
        let mut future = std::pin::pin!(future);
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut context) {
            std::task::Poll::Ready(value) => value,
            std::task::Poll::Pending => panic!("the future waited"),
        }
    }

    #[test]
    fn values_print_redacted() {
        let value = SecretValue::new("hunter2");
        assert_eq!(format!("{value:?}"), "SecretValue(<redacted>)");
        assert_eq!(format!("{:?}", Some(&value)), "Some(SecretValue(<redacted>))");
        assert_eq!(value.expose(), "hunter2");
    }

    #[test]
    fn values_are_cached_for_the_ttl() {
        let count = Arc::new(AtomicUsize::new(0));
        let cached = Secrets::new(Counting(count.clone()));
        assert_eq!(now(cached.get("k")).unwrap().expose(), "k-1");
        assert_eq!(now(cached.clone().get("k")).unwrap().expose(), "k-1", "clones share the cache");
        assert_eq!(count.load(Ordering::SeqCst), 1);
        let uncached = Secrets::with_ttl(Counting(count.clone()), Duration::ZERO);
        assert_eq!(now(uncached.get("k")).unwrap().expose(), "k-2");
        assert_eq!(now(uncached.get("k")).unwrap().expose(), "k-3");
    }

    #[test]
    fn errors_name_the_secret() {
        let error = now(Secrets::default().get("mail-api-key")).unwrap_err();
        assert_eq!(error, SecretError::NotConfigured { name: "mail-api-key".into() });
        let fixed = Secrets::from_values([("a", "1")]);
        assert_eq!(now(fixed.get("a")).unwrap().expose(), "1");
        let missing = now(fixed.get("b")).unwrap_err();
        assert_eq!(missing.name(), "b");
        assert!(missing.to_string().contains("secret `b` is not set"), "{missing}");
    }
}
