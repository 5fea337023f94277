//! Object stores for the URLs a pipeline names: local paths and `file://` built in, `s3://`, `gs://` and `az://` configured from the environment.

pub mod layout;

use std::sync::Arc;
use std::time::Duration;

use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use object_store::ObjectMeta;
use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::{ClientConfigKey, RetryConfig};

use crate::pipeline::StorageSpec;
use url::Url;

/// A storage problem, naming the URL it is about.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The location is not a valid path or URL.
    #[error("invalid location `{location}`: {reason}")]
    InvalidLocation {
        /// The location as resolved.
        location: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The URL scheme has no object store.
    #[error(
        "unsupported storage scheme `{scheme}` in `{location}` (supported: local paths, `file://`, `s3://`, `gs://`, `az://`)"
    )]
    UnsupportedScheme {
        /// The scheme.
        scheme: String,
        /// The location.
        location: String,
    },
    /// Building the client failed (missing settings in the environment).
    #[error("cannot configure storage for `{location}`: {source}")]
    Configure {
        /// The location.
        location: String,
        /// The client's error.
        #[source]
        source: object_store::Error,
    },
    /// Listing or reading objects failed.
    #[error("cannot read `{location}`: {source}")]
    Read {
        /// The location.
        location: String,
        /// The store's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Parses a resolved location into the URL DataFusion reads tables from.
pub fn table_url(location: &str) -> Result<ListingTableUrl, StorageError> {
    ListingTableUrl::parse(location).map_err(|err| StorageError::InvalidLocation {
        location: location.to_string(),
        reason: err.to_string(),
    })
}

/// Makes sure the session has an object store for `location`, building
/// remote clients from the environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`)
/// with default connection settings. Stores configured earlier by
/// [`configure_store`] are reused.
pub fn ensure_store(
    ctx: &SessionContext,
    location: &str,
) -> Result<Arc<dyn ObjectStore>, StorageError> {
    configure_store(ctx, location, &StorageSpec::default())
}

/// Duration settings as object_store's configuration values.
fn millis(seconds: f64) -> String {
    format!("{}ms", (seconds * 1000.0).round().max(0.0) as u64)
}

/// The client settings of a `storage` section as object_store keys.
fn client_settings(settings: &StorageSpec) -> Vec<(ClientConfigKey, String)> {
    [
        (ClientConfigKey::Timeout, settings.timeout_s.map(millis)),
        (
            ClientConfigKey::ConnectTimeout,
            settings.connect_timeout_s.map(millis),
        ),
        (
            ClientConfigKey::AllowHttp,
            settings.allow_http.map(|allow| allow.to_string()),
        ),
    ]
    .into_iter()
    .filter_map(|(key, value)| Some((key, value?)))
    .collect()
}

/// The retry policy of a `storage` section, when it sets one.
fn retry_config(settings: &StorageSpec) -> Option<RetryConfig> {
    if settings.max_retries.is_none()
        && settings.retry_timeout_s.is_none()
        && settings.backoff_initial_ms.is_none()
        && settings.backoff_max_s.is_none()
    {
        return None;
    }
    let mut retry = RetryConfig::default();
    if let Some(n) = settings.max_retries {
        retry.max_retries = n;
    }
    if let Some(s) = settings.retry_timeout_s {
        retry.retry_timeout = Duration::from_secs_f64(s.max(0.0));
    }
    if let Some(ms) = settings.backoff_initial_ms {
        retry.backoff.init_backoff = Duration::from_millis(ms);
    }
    if let Some(s) = settings.backoff_max_s {
        retry.backoff.max_backoff = Duration::from_secs_f64(s.max(0.0));
    }
    Some(retry)
}

/// Makes sure the session has an object store for `location`, configured
/// with the pipeline's `storage` settings and credentials from the
/// environment. An existing store for the same bucket is reused.
pub fn configure_store(
    ctx: &SessionContext,
    location: &str,
    settings: &StorageSpec,
) -> Result<Arc<dyn ObjectStore>, StorageError> {
    let url = table_url(location)?;
    let store_url = url.object_store();
    if let Ok(store) = ctx.runtime_env().object_store(&store_url) {
        return Ok(store);
    }
    let parsed = Url::parse(store_url.as_str()).map_err(|err| StorageError::InvalidLocation {
        location: location.to_string(),
        reason: err.to_string(),
    })?;
    let bucket = parsed.host_str().unwrap_or_default().to_string();
    let configure = |source| StorageError::Configure {
        location: location.to_string(),
        source,
    };
    let client = client_settings(settings);
    let retry = retry_config(settings);
    let store: Arc<dyn ObjectStore> = match parsed.scheme() {
        "s3" => {
            let mut builder = AmazonS3Builder::from_env().with_bucket_name(&bucket);
            if let Some(endpoint) = &settings.endpoint {
                builder = builder.with_endpoint(endpoint);
            }
            if let Some(region) = &settings.region {
                builder = builder.with_region(region);
            }
            for (key, value) in client {
                builder = builder.with_config(AmazonS3ConfigKey::Client(key), value);
            }
            if let Some(retry) = retry {
                builder = builder.with_retry(retry);
            }
            Arc::new(builder.build().map_err(configure)?)
        }
        "gs" => {
            let mut builder = GoogleCloudStorageBuilder::from_env().with_bucket_name(&bucket);
            for (key, value) in client {
                builder = builder.with_config(GoogleConfigKey::Client(key), value);
            }
            if let Some(retry) = retry {
                builder = builder.with_retry(retry);
            }
            Arc::new(builder.build().map_err(configure)?)
        }
        "az" | "abfs" | "abfss" => {
            let mut builder = MicrosoftAzureBuilder::from_env().with_container_name(&bucket);
            for (key, value) in client {
                builder = builder.with_config(AzureConfigKey::Client(key), value);
            }
            if let Some(retry) = retry {
                builder = builder.with_retry(retry);
            }
            Arc::new(builder.build().map_err(configure)?)
        }
        scheme => {
            return Err(StorageError::UnsupportedScheme {
                scheme: scheme.to_string(),
                location: location.to_string(),
            });
        }
    };
    ctx.register_object_store(&parsed, Arc::clone(&store));
    Ok(store)
}

/// Every object at `location` (one file, or all files below a folder) whose
/// name ends with `extension`, sorted by path.
pub async fn list_objects(
    ctx: &SessionContext,
    location: &str,
    extension: &str,
) -> Result<Vec<ObjectMeta>, StorageError> {
    let store = ensure_store(ctx, location)?;
    let url = table_url(location)?;
    let state = ctx.state();
    let read_error = |err: datafusion::error::DataFusionError| StorageError::Read {
        location: location.to_string(),
        source: explain_store_error(location, Box::new(err)),
    };
    let stream = url
        .list_all_files(&state, store.as_ref(), extension)
        .await
        .map_err(read_error)?;
    let mut objects: Vec<ObjectMeta> = stream.try_collect().await.map_err(read_error)?;
    objects.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(objects)
}

/// The store of an object's location (a path or URL) and the object's
/// path in it.
pub fn object_at(
    ctx: &SessionContext,
    location: &str,
) -> Result<(Arc<dyn ObjectStore>, object_store::path::Path), StorageError> {
    Ok((
        ensure_store(ctx, location)?,
        table_url(location)?.prefix().clone(),
    ))
}

/// The path on this machine's file system of a local location (a path or
/// a `file://` URL); `None` for an object store.
pub fn local_path_of(location: &str) -> Option<std::path::PathBuf> {
    let url = table_url(location).ok()?;
    if url.scheme() != "file" {
        return None;
    }
    object_store::local::LocalFileSystem::new()
        .path_to_filesystem(url.prefix())
        .ok()
}

/// The local file system path of a store path when `location` is on
/// local disk and the path exists, `None` elsewhere.
pub(crate) fn local_path(location: &str, path: &str) -> Option<std::path::PathBuf> {
    if !is_local(location) {
        return None;
    }
    let path = object_store::path::Path::parse(path).ok()?;
    object_store::local::LocalFileSystem::new()
        .path_to_filesystem(&path)
        .ok()
        .filter(|p| p.exists())
}

/// Whether `location` is on local disk (a path or a `file://` URL).
pub(crate) fn is_local(location: &str) -> bool {
    location.starts_with('/') || location.starts_with("file://")
}

/// The store of `folder` and the path of `name` (which may hold a `/`)
/// below it.
pub fn object_in(
    ctx: &SessionContext,
    folder: &str,
    name: &str,
) -> Result<(Arc<dyn ObjectStore>, object_store::path::Path), StorageError> {
    let store = ensure_store(ctx, folder)?;
    let prefix = table_url(folder)?.prefix().clone();
    Ok((store, path_below(prefix.as_ref(), name)))
}

/// A store path from its text, as a store gives it (already in the
/// store's encoding: `Path::from` would encode its `%` again).
pub fn store_path(raw: &str) -> object_store::path::Path {
    object_store::path::Path::parse(raw).unwrap_or_else(|_| object_store::path::Path::from(raw))
}

/// The path of `relative` (which may hold a `/`, in the store's encoding)
/// below the store path `base`.
pub fn path_below(base: &str, relative: &str) -> object_store::path::Path {
    store_path(&format!("{}/{relative}", base.trim_end_matches('/')))
}

/// An object's URL (`file:///…`, `s3://bucket/…`): how the run manifest
/// and the incremental state name it, and how a table reads it alone.
pub fn object_url(store: &ObjectStoreUrl, object: &ObjectMeta) -> String {
    format!("{}{}", store.as_str(), object.location)
}

/// How an object is named to users: `/abs/path` on local disk, the full URL elsewhere.
pub fn display_object(location: &str, object: &object_store::path::Path) -> String {
    match table_url(location) {
        Ok(url) if url.scheme() != "file" => {
            format!(
                "{}/{object}",
                url.object_store().as_str().trim_end_matches('/')
            )
        }
        _ => format!("/{object}"),
    }
}

/// Text with the user and password of every URL in it (`http://user:pass@host`,
/// an endpoint written with its credentials) replaced by `***`: what civica
/// shows or records never holds them.
pub fn redact_credentials(text: &str) -> String {
    static USERINFO: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@\x22'`]+@").ok()
    });
    match USERINFO.as_ref() {
        Some(userinfo) => userinfo.replace_all(text, "${1}***@").into_owned(),
        None => text.to_string(),
    }
}

/// The error with a plain explanation in front when the store's answer has
/// a well-known S3 error code; credentials are named by their variables,
/// never by their values.
fn explain_store_error(
    location: &str,
    err: Box<dyn std::error::Error + Send + Sync>,
) -> Box<dyn std::error::Error + Send + Sync> {
    let text = err.to_string();
    let bucket = table_url(location)
        .ok()
        .and_then(|url| Url::parse(url.object_store().as_str()).ok())
        .and_then(|url| url.host_str().map(str::to_string))
        .unwrap_or_default();
    let explanation = if text.contains("<Code>NoSuchBucket</Code>") {
        format!("bucket `{bucket}` does not exist")
    } else if text.contains("169.254.169.254") || text.contains("instance metadata") {
        // Without credentials in the environment the client asks the
        // cloud's instance metadata service, which off a cloud refuses.
        format!(
            "no credentials for bucket `{bucket}`: set `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (and `AWS_ENDPOINT` for an S3-compatible server) in the environment"
        )
    } else if [
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "AccessDenied",
    ]
    .iter()
    .any(|code| text.contains(&format!("<Code>{code}</Code>")))
    {
        format!(
            "access to bucket `{bucket}` was refused: check `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`"
        )
    } else {
        return err;
    };
    format!("{explanation} ({})", redact_credentials(&text)).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_never_shown() {
        assert_eq!(
            redact_credentials(
                "error sending request for url (http://AKIA:s3cr3t@minio:9000/lake?list-type=2)"
            ),
            "error sending request for url (http://***@minio:9000/lake?list-type=2)"
        );
        assert_eq!(
            redact_credentials("\"endpoint\": \"https://user@host/\""),
            "\"endpoint\": \"https://***@host/\""
        );
        let plain = "cannot read `s3://lake/raw/` at http://127.0.0.1:9000: refused; mail a@b.it";
        assert_eq!(redact_credentials(plain), plain);
    }

    #[test]
    fn a_refused_metadata_service_means_no_credentials() {
        let err = explain_store_error(
            "s3://lake/raw/",
            "Error performing token request: Received redirect without LOCATION, http://169.254.169.254/latest/api/token 403".into(),
        );
        let text = err.to_string();
        assert!(
            text.starts_with("no credentials for bucket `lake`: set `AWS_ACCESS_KEY_ID`"),
            "{text}"
        );
    }
}
