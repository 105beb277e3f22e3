//! `--s3-location` as the aws CLI takes it for `aws deploy create-deployment`: the shorthand
//! `bucket=B,key=K,bundleType=zip[,eTag=E][,version=V]`, or the same as JSON; and, as
//! `aws deploy push` writes it, `s3://B/K` (the bundle type from the key's extension).

use cutover_core::model::{BundleType, S3Location};

const USAGE: &str = "expected bucket=BUCKET,key=KEY,bundleType=zip|tar|tgz[,eTag=ETAG][,version=VERSION] or s3://BUCKET/KEY";

/// Parses one `--s3-location` value.
pub fn parse(value: &str) -> Result<S3Location, String> {
    let value = value.trim();
    let location = if value.starts_with('{') {
        serde_json::from_str::<S3Location>(value).map_err(|e| format!("{e}; {USAGE}"))?
    } else if let Some(url) = value.strip_prefix("s3://") {
        from_url(url)?
    } else {
        shorthand(value)?
    };
    if location.bucket.is_empty() {
        return Err(format!("the bucket is missing; {USAGE}"));
    }
    if location.key.is_empty() {
        return Err(format!("the key is missing; {USAGE}"));
    }
    if let Some(t @ (BundleType::Yaml | BundleType::Json)) = location.bundle_type {
        return Err(format!(
            "bundleType {t} is an AppSpec of a Lambda or ECS deployment; a server revision is a zip, tar or tgz bundle"
        ));
    }
    Ok(location)
}

fn shorthand(value: &str) -> Result<S3Location, String> {
    let mut location = S3Location {
        bucket: String::new(),
        key: String::new(),
        bundle_type: None,
        version: None,
        e_tag: None,
    };
    let mut seen = Vec::new();
    for pair in split_pairs(value)? {
        let (name, raw) = pair
            .split_once('=')
            .ok_or_else(|| format!("'{pair}' is not NAME=VALUE; {USAGE}"))?;
        let name = name.trim();
        let text = unquote(raw.trim()).to_owned();
        if seen.contains(&name) {
            return Err(format!("{name} is given twice"));
        }
        seen.push(name);
        match name {
            "bucket" => location.bucket = text,
            "key" => location.key = text,
            "bundleType" => {
                let t = text
                    .parse::<BundleType>()
                    .map_err(|e| format!("{e}; {USAGE}"))?;
                location.bundle_type = Some(t);
            }
            "version" => location.version = Some(text),
            "eTag" => location.e_tag = Some(text),
            other => {
                return Err(format!(
                    "'{other}' is not a field of an S3 location (bucket, key, bundleType, eTag, version)"
                ));
            }
        }
    }
    Ok(location)
}

/// The `NAME=VALUE` parts, split at commas outside quotes.
fn split_pairs(value: &str) -> Result<Vec<&str>, String> {
    let mut pairs = Vec::new();
    let mut quote = None;
    let mut start = 0;
    for (i, c) in value.char_indices() {
        match (c, quote) {
            ('"' | '\'', None) => quote = Some(c),
            (c, Some(q)) if c == q => quote = None,
            (',', None) => {
                pairs.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quote.is_some() {
        return Err(format!("a quote is not closed in '{value}'"));
    }
    pairs.push(&value[start..]);
    Ok(pairs
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect())
}

fn unquote(text: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(q).and_then(|t| t.strip_suffix(q)) {
            return inner;
        }
    }
    text
}

fn from_url(url: &str) -> Result<S3Location, String> {
    let (bucket, key) = url
        .split_once('/')
        .ok_or_else(|| format!("s3://{url} names no key; {USAGE}"))?;
    let lower = key.to_ascii_lowercase();
    let bundle_type = if lower.ends_with(".zip") {
        BundleType::Zip
    } else if lower.ends_with(".tgz") || lower.ends_with(".tar.gz") {
        BundleType::Tgz
    } else if lower.ends_with(".tar") {
        BundleType::Tar
    } else {
        return Err(format!(
            "s3://{url}: the bundle type cannot be told from the key; use bucket={bucket},key={key},bundleType=zip|tar|tgz"
        ));
    };
    Ok(S3Location {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        bundle_type: Some(bundle_type),
        version: None,
        e_tag: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(bucket: &str, key: &str, t: BundleType) -> S3Location {
        S3Location {
            bucket: bucket.into(),
            key: key.into(),
            bundle_type: Some(t),
            version: None,
            e_tag: None,
        }
    }

    #[test]
    fn the_aws_cli_shorthand() {
        assert_eq!(
            parse("bucket=revisions,key=web/v2.zip,bundleType=zip").unwrap(),
            loc("revisions", "web/v2.zip", BundleType::Zip)
        );
        let full =
            parse(" bundleType=tgz , key=a/b.tgz,bucket=r,eTag=\"abc,123\",version=v9 ").unwrap();
        assert_eq!(full.bundle_type, Some(BundleType::Tgz));
        assert_eq!(full.key, "a/b.tgz");
        assert_eq!(full.e_tag.as_deref(), Some("abc,123"));
        assert_eq!(full.version.as_deref(), Some("v9"));
        // The bundle type may be left to the server, as the aws CLI allows.
        let bare = parse("bucket=r,key=k").unwrap();
        assert_eq!(bare.bundle_type, None);
        // A key may hold '='.
        assert_eq!(
            parse("bucket=r,key=a=b.tar,bundleType=tar").unwrap().key,
            "a=b.tar"
        );
    }

    #[test]
    fn json_and_s3_urls() {
        assert_eq!(
            parse(r#"{"bucket": "r", "key": "k.zip", "bundleType": "zip", "eTag": "e"}"#).unwrap(),
            S3Location {
                e_tag: Some("e".into()),
                ..loc("r", "k.zip", BundleType::Zip)
            }
        );
        assert_eq!(
            parse("s3://r/web/site.tar.gz").unwrap(),
            loc("r", "web/site.tar.gz", BundleType::Tgz)
        );
        assert_eq!(
            parse("s3://r/x.TAR").unwrap().bundle_type,
            Some(BundleType::Tar)
        );
        let e = parse("s3://r/site").unwrap_err();
        assert!(
            e.contains("bucket=r,key=site,bundleType=zip|tar|tgz"),
            "{e}"
        );
        assert!(parse("s3://r").unwrap_err().contains("names no key"));
    }

    #[test]
    fn mistakes_are_named() {
        let e = parse("bucket=r,key=k,bundleType=rar").unwrap_err();
        assert!(
            e.starts_with("'rar' is not a valid bundle type; expected one of: tar, tgz, zip"),
            "{e}"
        );
        let e = parse("bucket=r,key=k,bundletype=zip").unwrap_err();
        assert_eq!(
            e,
            "'bundletype' is not a field of an S3 location (bucket, key, bundleType, eTag, version)"
        );
        assert!(
            parse("key=k,bundleType=zip")
                .unwrap_err()
                .starts_with("the bucket is missing")
        );
        assert!(
            parse("bucket=r,bundleType=zip")
                .unwrap_err()
                .starts_with("the key is missing")
        );
        assert!(
            parse("bucket=r,key")
                .unwrap_err()
                .starts_with("'key' is not NAME=VALUE")
        );
        assert_eq!(
            parse("bucket=r,bucket=s,key=k").unwrap_err(),
            "bucket is given twice"
        );
        assert!(
            parse("bucket=r,key=\"k")
                .unwrap_err()
                .contains("quote is not closed")
        );
        let e = parse("bucket=r,key=k,bundleType=YAML").unwrap_err();
        assert!(
            e.contains("a server revision is a zip, tar or tgz bundle"),
            "{e}"
        );
    }
}
