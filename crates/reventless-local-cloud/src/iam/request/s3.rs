//! S3 (REST, XML): the action comes from the method and the query's
//! sub-resource (`?tagging`, `?uploads`, …), the resource from the bucket
//! and key — path-style (`/bucket/key`) or virtual-host-style
//! (`Host: bucket.localhost`, `bucket.s3.<region>.amazonaws.com`). Objects
//! are `arn:aws:s3:::bucket/key` (the key decoded), buckets
//! `arn:aws:s3:::bucket`. A query parameter we do not know makes the request
//! unclassifiable rather than guessed.
use axum::http::{HeaderMap, Method};

use super::{Needs, RequestParts, check};

/// The bucket a virtual-host-style request names in its `Host`, if any.
/// An IP address (how the SDK addresses a loopback endpoint) is path-style.
pub fn virtual_host_bucket(headers: &HeaderMap) -> Option<String> {
    let host = headers.get("host").and_then(|v| v.to_str().ok())?;
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
        return None;
    }
    if let Some(bucket) = host.strip_suffix(".localhost") {
        return (!bucket.is_empty()).then(|| bucket.to_string());
    }
    // bucket.s3.amazonaws.com, bucket.s3.<region>.amazonaws.com, bucket.s3-<region>.amazonaws.com
    let (bucket, service) = host.split_once(".s3")?;
    let aws = service.starts_with('.') || service.starts_with('-');
    (aws && host.ends_with(".amazonaws.com") && !bucket.is_empty()).then(|| bucket.to_string())
}

/// `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key`.
fn arn(bucket: &str, key: Option<&str>) -> String {
    match key {
        Some(key) => format!("arn:aws:s3:::{bucket}/{key}"),
        None => format!("arn:aws:s3:::{bucket}"),
    }
}

/// Parameters of listings and reads that choose nothing of the action.
const PLAIN_PARAMS: [&str; 16] = [
    "x-id",
    "list-type",
    "prefix",
    "delimiter",
    "max-keys",
    "marker",
    "continuation-token",
    "start-after",
    "encoding-type",
    "fetch-owner",
    "key-marker",
    "version-id-marker",
    "upload-id-marker",
    "max-uploads",
    "max-parts",
    "part-number-marker",
];

/// A bucket's sub-resources: (name, GET action, PUT action, DELETE action).
const BUCKET_SUBRESOURCES: [(&str, &str, &str, &str); 15] = [
    ("acl", "GetBucketAcl", "PutBucketAcl", ""),
    ("cors", "GetBucketCORS", "PutBucketCORS", "PutBucketCORS"),
    ("encryption", "GetEncryptionConfiguration", "PutEncryptionConfiguration", "PutEncryptionConfiguration"),
    ("lifecycle", "GetLifecycleConfiguration", "PutLifecycleConfiguration", "PutLifecycleConfiguration"),
    ("location", "GetBucketLocation", "", ""),
    ("logging", "GetBucketLogging", "PutBucketLogging", ""),
    ("notification", "GetBucketNotification", "PutBucketNotification", ""),
    ("policy", "GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"),
    ("publicAccessBlock", "GetBucketPublicAccessBlock", "PutBucketPublicAccessBlock", "PutBucketPublicAccessBlock"),
    ("tagging", "GetBucketTagging", "PutBucketTagging", "PutBucketTagging"),
    ("versioning", "GetBucketVersioning", "PutBucketVersioning", ""),
    ("website", "GetBucketWebsite", "PutBucketWebsite", "DeleteBucketWebsite"),
    ("ownershipControls", "GetBucketOwnershipControls", "PutBucketOwnershipControls", "PutBucketOwnershipControls"),
    ("uploads", "ListBucketMultipartUploads", "", ""),
    ("versions", "ListBucketVersions", "", ""),
];

/// What an S3 request needs.
pub(super) fn s3(request: &RequestParts<'_>) -> Needs {
    let params: Vec<(String, String)> =
        form_urlencoded::parse(request.query.unwrap_or("").as_bytes()).into_owned().collect();
    let has = |name: &str| params.iter().any(|(key, _)| key == name);
    let path = request.path.trim_start_matches('/');
    let (bucket, key) = match virtual_host_bucket(request.headers) {
        Some(bucket) => (bucket, path.to_string()),
        None => match path.split_once('/') {
            Some((bucket, key)) => (bucket.to_string(), key.to_string()),
            None => (path.to_string(), String::new()),
        },
    };
    let key = percent_encoding::percent_decode_str(&key).decode_utf8_lossy().into_owned();
    let method = request.method;
    if bucket.is_empty() {
        return match *method {
            Method::GET => check([("s3:ListAllMyBuckets".to_string(), "*".to_string())]),
            _ => Needs::Unknown { action: None },
        };
    }
    if key.is_empty() {
        return bucket_needs(method, &params, &bucket, request.body);
    }
    let versioned = has("versionId");
    let object = arn(&bucket, Some(&key));
    let known = |extra: &[&str]| {
        params.iter().all(|(name, _)| {
            PLAIN_PARAMS.contains(&name.as_str()) || name.starts_with("response-") || extra.contains(&name.as_str())
        })
    };
    let pick = |plain: &str, version: &str| if versioned { version.to_string() } else { plain.to_string() };
    let sub = |name: &str| has(name);
    let action = match *method {
        Method::GET | Method::HEAD if sub("tagging") => pick("GetObjectTagging", "GetObjectVersionTagging"),
        Method::GET if sub("acl") => pick("GetObjectAcl", "GetObjectVersionAcl"),
        Method::GET if sub("attributes") => pick("GetObjectAttributes", "GetObjectVersionAttributes"),
        Method::GET if sub("uploadId") => "ListMultipartUploadParts".into(),
        Method::GET | Method::HEAD if known(&["versionId", "partNumber"]) => pick("GetObject", "GetObjectVersion"),
        Method::PUT if sub("tagging") => pick("PutObjectTagging", "PutObjectVersionTagging"),
        Method::PUT if sub("acl") => pick("PutObjectAcl", "PutObjectVersionAcl"),
        Method::PUT if known(&["uploadId", "partNumber"]) => "PutObject".into(),
        Method::DELETE if sub("tagging") => pick("DeleteObjectTagging", "DeleteObjectVersionTagging"),
        Method::DELETE if sub("uploadId") => "AbortMultipartUpload".into(),
        Method::DELETE if known(&["versionId"]) => pick("DeleteObject", "DeleteObjectVersion"),
        // CreateMultipartUpload, CompleteMultipartUpload.
        Method::POST if (sub("uploads") || sub("uploadId")) && known(&["uploads", "uploadId"]) => "PutObject".into(),
        _ => return Needs::Unknown { action: None },
    };
    let extra_params = params.iter().any(|(name, _)| {
        !(PLAIN_PARAMS.contains(&name.as_str())
            || name.starts_with("response-")
            || ["versionId", "partNumber", "uploadId", "uploads", "tagging", "acl", "attributes"]
                .contains(&name.as_str()))
    });
    if extra_params {
        return Needs::Unknown { action: Some(format!("s3:{action}")) };
    }
    let mut needs = vec![(format!("s3:{action}"), object)];
    // CopyObject / UploadPartCopy also read their source.
    if *method == Method::PUT
        && let Some(source) = request.headers.get("x-amz-copy-source").and_then(|v| v.to_str().ok())
    {
        let source = percent_encoding::percent_decode_str(source).decode_utf8_lossy().into_owned();
        let (source, version) = match source.split_once("?versionId=") {
            Some((source, _)) => (source.to_string(), true),
            None => (source, false),
        };
        match source.trim_start_matches('/').split_once('/') {
            Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => {
                let action = if version { "s3:GetObjectVersion" } else { "s3:GetObject" };
                needs.push((action.to_string(), arn(bucket, Some(key))));
            }
            _ => return Needs::Unknown { action: Some(format!("s3:{action}")) },
        }
    }
    check(needs)
}

/// A request on the bucket itself (no key).
fn bucket_needs(method: &Method, params: &[(String, String)], bucket: &str, body: &[u8]) -> Needs {
    let resource = arn(bucket, None);
    let subresources: Vec<&str> =
        params.iter().map(|(name, _)| name.as_str()).filter(|name| !PLAIN_PARAMS.contains(name)).collect();
    let action = match (method, subresources.as_slice()) {
        (&Method::GET | &Method::HEAD, []) => "ListBucket",
        (&Method::PUT, []) => "CreateBucket",
        (&Method::DELETE, []) => "DeleteBucket",
        (&Method::POST, ["delete"]) => return delete_objects(bucket, body),
        (method, [sub]) => {
            let Some((_, get, put, delete)) = BUCKET_SUBRESOURCES.iter().find(|(name, ..)| name == sub) else {
                return Needs::Unknown { action: None };
            };
            match *method {
                Method::GET => *get,
                Method::PUT => *put,
                Method::DELETE => *delete,
                _ => "",
            }
        }
        _ => "",
    };
    if action.is_empty() {
        return Needs::Unknown { action: None };
    }
    check([(format!("s3:{action}"), resource)])
}

/// `DeleteObjects` is authorized per object as `s3:DeleteObject` (or
/// `s3:DeleteObjectVersion` for a version): the keys come from its XML body.
fn delete_objects(bucket: &str, body: &[u8]) -> Needs {
    let text = String::from_utf8_lossy(body);
    let element = |within: &str, name: &str| -> Option<String> {
        let start = within.find(&format!("<{name}>"))? + name.len() + 2;
        let end = within[start..].find(&format!("</{name}>"))? + start;
        Some(xml_unescape(&within[start..end]))
    };
    let mut needs = Vec::new();
    for object in text.split("<Object>").skip(1) {
        let object = object.split("</Object>").next().unwrap_or_default();
        let Some(key) = element(object, "Key") else {
            return Needs::Unknown { action: Some("s3:DeleteObject".into()) };
        };
        let action = if element(object, "VersionId").is_some() { "s3:DeleteObjectVersion" } else { "s3:DeleteObject" };
        needs.push((action.to_string(), arn(bucket, Some(&key))));
    }
    if needs.is_empty() {
        return Needs::Unknown { action: Some("s3:DeleteObject".into()) };
    }
    check(needs)
}

fn xml_unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use axum::http::{HeaderMap, HeaderValue, Method};

    use super::super::{Need, Needs, Protocol, RequestParts, classify, signature};

    const AUTH: &str = "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20250101/us-east-1/s3/aws4_request, \
                        SignedHeaders=host;x-amz-date, Signature=abc";

    fn headers(host: &str, extra: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static(AUTH));
        headers.insert("host", HeaderValue::from_str(host).unwrap());
        for (name, value) in extra {
            headers.insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    fn needs(method: Method, host: &str, path: &str, query: Option<&str>, extra: &[(&str, &str)]) -> Needs {
        needs_with_body(method, host, path, query, extra, b"")
    }

    fn needs_with_body(
        method: Method,
        host: &str,
        path: &str,
        query: Option<&str>,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Needs {
        let headers = headers(host, extra);
        let signature = signature(&headers, None).unwrap();
        let parts = RequestParts { method: &method, path, query, headers: &headers, body };
        let classification = classify(&parts, &signature, "123456789012");
        assert_eq!(classification.protocol, Protocol::RestXml);
        classification.needs
    }

    fn pairs(needs: &[(&str, &str)]) -> Needs {
        Needs::Check(needs.iter().map(|(a, r)| Need { action: a.to_string(), resource: r.to_string() }).collect())
    }

    const PATH_HOST: &str = "127.0.0.1:4566";
    const OBJECT: &str = "arn:aws:s3:::shop-dev-catalog-tasks/tasks/ImportProducts/a b.csv";

    #[test]
    fn objects_path_style_and_virtual_host_style_name_the_same_arn() {
        let get = pairs(&[("s3:GetObject", OBJECT)]);
        let path = "/shop-dev-catalog-tasks/tasks/ImportProducts/a%20b.csv";
        assert_eq!(needs(Method::GET, PATH_HOST, path, Some("x-id=GetObject"), &[]), get);
        let virtual_path = "/tasks/ImportProducts/a%20b.csv";
        for host in [
            "shop-dev-catalog-tasks.localhost:4566",
            "shop-dev-catalog-tasks.s3.amazonaws.com",
            "shop-dev-catalog-tasks.s3.eu-west-1.amazonaws.com",
            "shop-dev-catalog-tasks.s3-eu-west-1.amazonaws.com",
        ] {
            assert_eq!(needs(Method::GET, host, virtual_path, Some("x-id=GetObject"), &[]), get, "{host}");
        }
        assert_eq!(needs(Method::HEAD, PATH_HOST, path, None, &[]), get, "HeadObject is GetObject");
        assert_eq!(
            needs(Method::GET, PATH_HOST, path, Some("versionId=3&response-content-type=text%2Fcsv"), &[]),
            pairs(&[("s3:GetObjectVersion", OBJECT)])
        );
        assert_eq!(
            needs(Method::PUT, PATH_HOST, path, Some("x-id=PutObject"), &[]),
            pairs(&[("s3:PutObject", OBJECT)])
        );
        assert_eq!(needs(Method::DELETE, PATH_HOST, path, None, &[]), pairs(&[("s3:DeleteObject", OBJECT)]));
        assert_eq!(
            needs(Method::GET, PATH_HOST, path, Some("tagging"), &[]),
            pairs(&[("s3:GetObjectTagging", OBJECT)])
        );
        assert_eq!(
            needs(Method::PUT, PATH_HOST, path, Some("tagging&versionId=2"), &[]),
            pairs(&[("s3:PutObjectVersionTagging", OBJECT)])
        );
    }

    #[test]
    fn multipart_uploads_and_copies() {
        let path = "/b/k.csv";
        let object = "arn:aws:s3:::b/k.csv";
        assert_eq!(needs(Method::POST, PATH_HOST, path, Some("uploads"), &[]), pairs(&[("s3:PutObject", object)]));
        assert_eq!(
            needs(Method::PUT, PATH_HOST, path, Some("partNumber=2&uploadId=u1&x-id=UploadPart"), &[]),
            pairs(&[("s3:PutObject", object)])
        );
        assert_eq!(needs(Method::POST, PATH_HOST, path, Some("uploadId=u1"), &[]), pairs(&[("s3:PutObject", object)]));
        assert_eq!(
            needs(Method::DELETE, PATH_HOST, path, Some("uploadId=u1"), &[]),
            pairs(&[("s3:AbortMultipartUpload", object)])
        );
        assert_eq!(
            needs(Method::GET, PATH_HOST, path, Some("uploadId=u1"), &[]),
            pairs(&[("s3:ListMultipartUploadParts", object)])
        );
        assert_eq!(
            needs(Method::PUT, PATH_HOST, path, None, &[("x-amz-copy-source", "src/dir%2Fa.csv")]),
            pairs(&[("s3:PutObject", object), ("s3:GetObject", "arn:aws:s3:::src/dir/a.csv")])
        );
        assert_eq!(
            needs(Method::PUT, PATH_HOST, path, None, &[("x-amz-copy-source", "/src/a.csv?versionId=7")]),
            pairs(&[("s3:PutObject", object), ("s3:GetObjectVersion", "arn:aws:s3:::src/a.csv")])
        );
    }

    #[test]
    fn buckets_by_method_and_sub_resource() {
        let bucket = "arn:aws:s3:::b";
        let on_bucket = |action: &str| pairs(&[(action, bucket)]);
        assert_eq!(
            needs(Method::GET, PATH_HOST, "/b", Some("list-type=2&prefix=tasks%2F"), &[]),
            on_bucket("s3:ListBucket")
        );
        assert_eq!(needs(Method::GET, "b.localhost", "/", Some("list-type=2"), &[]), on_bucket("s3:ListBucket"));
        assert_eq!(needs(Method::HEAD, PATH_HOST, "/b", None, &[]), on_bucket("s3:ListBucket"));
        assert_eq!(needs(Method::PUT, PATH_HOST, "/b", None, &[]), on_bucket("s3:CreateBucket"));
        assert_eq!(needs(Method::DELETE, PATH_HOST, "/b/", None, &[]), on_bucket("s3:DeleteBucket"));
        assert_eq!(needs(Method::GET, PATH_HOST, "/b", Some("versions"), &[]), on_bucket("s3:ListBucketVersions"));
        assert_eq!(needs(Method::GET, PATH_HOST, "/b", Some("tagging"), &[]), on_bucket("s3:GetBucketTagging"));
        assert_eq!(
            needs(Method::PUT, PATH_HOST, "/b", Some("notification"), &[]),
            on_bucket("s3:PutBucketNotification")
        );
        assert_eq!(
            needs(Method::DELETE, PATH_HOST, "/b", Some("encryption"), &[]),
            on_bucket("s3:PutEncryptionConfiguration")
        );
        assert_eq!(
            needs(Method::GET, PATH_HOST, "/", None, &[]),
            pairs(&[("s3:ListAllMyBuckets", "*")]),
            "ListBuckets names no bucket"
        );
        let body = b"<Delete><Object><Key>tasks/a&amp;b.csv</Key></Object><Object><Key>x</Key><VersionId>3</VersionId></Object></Delete>";
        assert_eq!(
            needs_with_body(Method::POST, PATH_HOST, "/b", Some("delete"), &[], body),
            pairs(&[
                ("s3:DeleteObject", "arn:aws:s3:::b/tasks/a&b.csv"),
                ("s3:DeleteObjectVersion", "arn:aws:s3:::b/x")
            ])
        );
    }

    #[test]
    fn what_it_cannot_read_is_not_guessed() {
        assert!(matches!(needs(Method::GET, PATH_HOST, "/b", Some("analytics"), &[]), Needs::Unknown { .. }));
        assert!(matches!(
            needs(Method::GET, PATH_HOST, "/b/k", Some("select&select-type=2"), &[]),
            Needs::Unknown { .. }
        ));
        assert!(matches!(needs(Method::POST, PATH_HOST, "/b", Some("delete"), &[]), Needs::Unknown { .. }));
        assert!(matches!(needs(Method::PATCH, PATH_HOST, "/b/k", None, &[]), Needs::Unknown { .. }));
        assert!(matches!(
            needs(Method::PUT, PATH_HOST, "/b/k", None, &[("x-amz-copy-source", "nokey")]),
            Needs::Unknown { .. }
        ));
        assert_eq!(super::virtual_host_bucket(&headers("127.0.0.1:9000", &[])), None);
        assert_eq!(super::virtual_host_bucket(&headers("example.com", &[])), None);
    }
}
