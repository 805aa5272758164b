//! An object store view that hides the lake writer's temporary files.
//!
//! The lake writer stages every Parquet file under a name starting with `.`
//! and renames it into place once it is durable (DESIGN §5, delivery
//! guarantee). DataFusion lists every object under a table's folder, so a
//! query racing a flush would read a half-written file. Listing through this
//! wrapper drops any object whose path below the listed prefix has a segment
//! starting with `.`; reads of the files that remain go straight through.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use object_store::path::{Path, PathPart};
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, Result,
};

/// Wraps the lake's store so listings never show hidden (temporary) objects.
#[derive(Debug)]
pub struct HideTempFiles {
    inner: Arc<dyn ObjectStore>,
}

impl HideTempFiles {
    /// Hide temporary objects of `inner`.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self { inner }
    }
}

/// True when `location`, below `prefix`, passes through a segment starting with `.`.
/// Only the part below the prefix counts, so a lake rooted in a dot-folder still reads.
fn is_hidden(prefix: Option<&Path>, location: &Path) -> bool {
    let hidden = |part: PathPart<'_>| part.as_ref().starts_with('.');
    match prefix {
        Some(prefix) => location.prefix_match(prefix).is_some_and(|mut below| below.any(hidden)),
        None => location.parts().any(hidden),
    }
}

impl fmt::Display for HideTempFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HideTempFiles({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for HideTempFiles {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        without_hidden(self.inner.list(prefix), prefix)
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, Result<ObjectMeta>> {
        without_hidden(self.inner.list_with_offset(prefix, offset), prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let mut listed = self.inner.list_with_delimiter(prefix).await?;
        listed.objects.retain(|meta| !is_hidden(prefix, &meta.location));
        listed.common_prefixes.retain(|folder| !is_hidden(prefix, folder));
        Ok(listed)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// Drop listed objects that sit below a hidden path segment (temporary files); errors pass.
fn without_hidden(
    listing: BoxStream<'static, Result<ObjectMeta>>,
    prefix: Option<&Path>,
) -> BoxStream<'static, Result<ObjectMeta>> {
    let owned = prefix.cloned();
    listing
        .filter(move |item| {
            let keep = match item {
                Ok(meta) => !is_hidden(owned.as_ref(), &meta.location),
                Err(_) => true,
            };
            std::future::ready(keep)
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn listings_skip_dot_files_and_dot_folders() -> Result<(), Box<dyn std::error::Error>> {
        let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        for path in [
            ".lake/events/date=2026-01-01/app=a/part-1.parquet",
            ".lake/events/date=2026-01-01/app=a/.part-2.parquet",
            ".lake/events/date=2026-01-01/.staging/part-3.parquet",
        ] {
            inner.put(&Path::from(path), PutPayload::from_static(b"x")).await?;
        }
        let store = HideTempFiles::new(inner);
        let prefix = Path::from(".lake/events");
        let listed: Vec<String> =
            store.list(Some(&prefix)).map_ok(|meta| meta.location.to_string()).try_collect().await?;
        assert_eq!(listed, vec![".lake/events/date=2026-01-01/app=a/part-1.parquet".to_string()]);

        let folder = Path::from(".lake/events/date=2026-01-01");
        let shallow = store.list_with_delimiter(Some(&folder)).await?;
        let folders: Vec<String> = shallow.common_prefixes.iter().map(ToString::to_string).collect();
        assert_eq!(folders, vec![".lake/events/date=2026-01-01/app=a".to_string()]);
        Ok(())
    }
}
