use std::collections::HashMap;

use bytes::Bytes;

use super::{LakeStore, shown_location};
use crate::error::LakeError;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn all_files(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).map(|p| p.display().to_string()).unwrap_or_default());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn local_atomic_put_leaves_no_temporary_and_survives_overwrite() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = LakeStore::open(&dir.path().display().to_string(), &HashMap::new()).await?;
    assert!(store.is_local());
    assert!(store.url().starts_with("file:///"));
    let path = "events/date=2024-01-01/app=a%2Fb/x.parquet";
    store.put_atomic(path, Bytes::from_static(b"first")).await?;
    store.put_atomic(path, Bytes::from_static(b"second, longer")).await?;
    assert_eq!(store.get(path).await?, Some(Bytes::from_static(b"second, longer")));
    assert_eq!(all_files(dir.path()), vec![path.to_owned()], "no temporaries remain");
    let listed = store.list("events").await?;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].path, path);
    assert_eq!(listed[0].size, 14);
    Ok(())
}

#[tokio::test]
async fn missing_files_read_as_none_and_delete_is_idempotent() -> TestResult {
    let dir = tempfile::tempdir()?;
    let url = format!("file://{}", dir.path().display());
    let stores = [LakeStore::open(&url, &HashMap::new()).await?, LakeStore::open("memory://", &HashMap::new()).await?];
    for store in stores {
        assert_eq!(store.get("nothing/here.json").await?, None);
        store.delete("nothing/here.json").await?;
        store.put_atomic("a/b.json", Bytes::from_static(b"{}")).await?;
        store.delete("a/b.json").await?;
        store.delete("a/b.json").await?;
        assert_eq!(store.get("a/b.json").await?, None);
        assert!(store.list("a").await?.is_empty());
        assert!(store.list("never").await?.is_empty());
        store.check_writable().await?;
        assert!(store.list("").await?.is_empty(), "the probe is removed");
    }
    Ok(())
}

#[tokio::test]
async fn listing_skips_hidden_temporaries() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = LakeStore::open(&dir.path().display().to_string(), &HashMap::new()).await?;
    store.put_atomic("rollups/date=2024-01-01/f.parquet", Bytes::from_static(b"x")).await?;
    std::fs::write(dir.path().join("rollups/date=2024-01-01/.f.parquet.tmp-1"), b"partial")?;
    let listed: Vec<String> = store.list("rollups").await?.into_iter().map(|o| o.path).collect();
    assert_eq!(listed, ["rollups/date=2024-01-01/f.parquet"]);
    Ok(())
}

#[tokio::test]
async fn memory_store_honours_a_prefix() -> TestResult {
    let store = LakeStore::open("memory://lake/root", &HashMap::new()).await?;
    assert_eq!(store.url(), "memory:///lake/root");
    store.put_atomic("feedback/date=2024-01-01/f.parquet", Bytes::from_static(b"x")).await?;
    let listed = store.list("feedback").await?;
    assert_eq!(listed[0].path, "feedback/date=2024-01-01/f.parquet");
    let raw = store.object_store();
    let meta = object_store::ObjectStoreExt::head(
        raw.as_ref(),
        &object_store::path::Path::from("lake/root/feedback/date=2024-01-01/f.parquet"),
    )
    .await?;
    assert_eq!(meta.size, 1);
    Ok(())
}

#[tokio::test]
async fn paths_that_escape_the_root_are_rejected() -> TestResult {
    let store = LakeStore::open("memory://", &HashMap::new()).await?;
    for path in ["../x", "/abs", "a//b", "a/./b", "", "a/"] {
        let result = store.put_atomic(path, Bytes::new()).await;
        assert!(matches!(result, Err(LakeError::Path { .. })), "{path:?}: {result:?}");
    }
    Ok(())
}

#[tokio::test]
async fn s3_locations_parse_bucket_prefix_and_options() -> TestResult {
    let options = HashMap::from([
        ("AWS_REGION".to_owned(), "eu-west-1".to_owned()),
        ("aws_endpoint".to_owned(), "http://127.0.0.1:9000".to_owned()),
        ("aws_allow_http".to_owned(), "true".to_owned()),
        ("aws_access_key_id".to_owned(), "test".to_owned()),
        ("aws_secret_access_key".to_owned(), "test".to_owned()),
    ]);
    let store = LakeStore::open("s3://bucket/some/prefix/", &options).await?;
    assert_eq!(store.url(), "s3://bucket/some/prefix");
    assert!(!store.is_local());

    let unknown = HashMap::from([("no_such_option".to_owned(), "1".to_owned())]);
    let error = LakeStore::open("s3://bucket", &unknown).await.err();
    assert!(matches!(error, Some(LakeError::StoreConfig { ref key, .. }) if key == "no_such_option"), "{error:?}");
    let message = error.map(|error| std::error::Error::source(&error).map(ToString::to_string)).unwrap_or_default();
    assert!(message.is_some_and(|m| m.contains("not an S3 option") && m.contains("aws_region")), "a fix is suggested");

    let error = LakeStore::open("gs://bucket", &HashMap::new()).await.err();
    assert!(matches!(error, Some(LakeError::Location { .. })), "{error:?}");
    let error = LakeStore::open("memory://", &options).await.err();
    assert!(matches!(error, Some(LakeError::Location { .. })), "{error:?}");
    Ok(())
}

#[tokio::test]
async fn conditional_puts_succeed_only_against_the_version_read() -> TestResult {
    let dir = tempfile::tempdir()?;
    let local = LakeStore::open(&dir.path().display().to_string(), &HashMap::new()).await?;
    let memory = LakeStore::open("memory://", &HashMap::new()).await?;
    for store in [local, memory] {
        let path = "_checkpoints/s/0.json";
        let created = store.put_if(path, Bytes::from_static(b"one"), None).await?;
        let again = store.put_if(path, Bytes::from_static(b"other"), None).await;
        assert!(matches!(again, Err(LakeError::Conflict { .. })), "create over an existing object: {again:?}");
        let (bytes, read) = store.get_versioned(path).await?.ok_or("missing")?;
        assert_eq!((bytes, &read), (Bytes::from_static(b"one"), &created));
        let updated = store.put_if(path, Bytes::from_static(b"two"), Some(&read)).await?;
        // A writer still holding the first version loses, and changes nothing.
        let stale = store.put_if(path, Bytes::from_static(b"three"), Some(&read)).await;
        assert!(matches!(stale, Err(LakeError::Conflict { .. })), "{stale:?}");
        assert_eq!(
            store.get_versioned(path).await?.map(|(b, v)| (b, v == updated)),
            Some((Bytes::from_static(b"two"), true))
        );
        assert!(store.list("_checkpoints").await?.iter().all(|o| o.path == path), "no lock or temporary is listed");
    }
    Ok(())
}

#[tokio::test]
async fn typos_that_would_make_a_local_folder_are_refused() -> TestResult {
    for (location, expected) in [
        ("s3:/my-bucket/lake", "`s3:` is not followed by `//`"),
        ("file:lake", "`file:` is not followed by `//`"),
        ("lake:2024", "./lake:2024"),
        ("~/lake", "`~` is only expanded by a shell"),
        ("file://~/lake", "`~` is only expanded by a shell"),
    ] {
        for result in [
            LakeStore::open(location, &HashMap::new()).await.map(drop),
            LakeStore::check(location, &HashMap::new()).await,
        ] {
            let error = result.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains(expected), "{location}: {error}");
        }
        let options = HashMap::from([("aws_region".to_owned(), "eu-west-1".to_owned())]);
        let error = LakeStore::open(location, &options).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains(expected), "the typo, not the options, is named: {location}: {error}");
    }
    assert!(!std::path::Path::new("s3:").exists() && !std::path::Path::new("~").exists(), "no folder was made");
    // A `:` after the first `/`, or in a path that starts with `.` or `/`, is a local folder's.
    let dir = tempfile::tempdir()?;
    LakeStore::open(&dir.path().join("a:b").display().to_string(), &HashMap::new()).await?;
    for location in ["./lake:2024", "lake/a:b", "file:///lake:2024"] {
        LakeStore::check(location, &HashMap::new()).await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_bad_s3_option_is_named_on_its_own() -> TestResult {
    for (key, value) in
        [("aws_allow_http", "maybe"), ("aws_conditional_put", "disabld"), ("aws_endpoint", "127.0.0.1:9000")]
    {
        let options =
            HashMap::from([("aws_region".to_owned(), "eu-west-1".to_owned()), (key.to_owned(), value.to_owned())]);
        let error = LakeStore::check("s3://bucket/x", &options).await.err();
        assert!(matches!(error, Some(LakeError::StoreConfig { key: ref named, .. }) if named == key), "{error:?}");
    }
    let error = LakeStore::check("s3://bucket name/x", &HashMap::new()).await.err();
    assert!(matches!(error, Some(LakeError::Location { .. })), "{error:?}");
    Ok(())
}

#[tokio::test]
async fn credentials_in_the_location_are_refused_and_never_shown() -> TestResult {
    for location in [
        "s3://AKIAEXAMPLE:wJalrXUtnSECRET@bucket/lake",
        "s3://wJalrXUtnSECRET@bucket",
        "file://me:wJalrXUtnSECRET@host/lake",
    ] {
        for result in [
            LakeStore::open(location, &HashMap::new()).await.map(drop),
            LakeStore::check(location, &HashMap::new()).await,
        ] {
            let error = result.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains("credentials are not read from the location"), "{error}");
            assert!(!error.contains("SECRET"), "the secret is shown: {error}");
            assert!(error.contains("://***@"), "the location is still recognisable: {error}");
        }
    }
    assert_eq!(shown_location("s3://bucket/a@b"), "s3://bucket/a@b", "an `@` in the prefix is no user part");
    assert_eq!(shown_location("./lake@2"), "./lake@2");
    Ok(())
}
