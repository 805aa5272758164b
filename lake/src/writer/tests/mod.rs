//! The exactly-once protocol: commit layout, crash at every step + recover,
//! idempotent recovery and replays, on a local directory and on memory://.
//!
//! The fixtures are here; the tests are split by what they exercise:
//! - `commit`: the files and checkpoint of a commit, replays, the offset contract, epochs;
//! - `recovery`: a crash at each step of a flush, then recovery;
//! - `fencing`: claims, and writers that lost theirs;
//! - `sweeps`: late files of killed writers, fenced manifests and the sweep schedule;
//! - `checkpoint_conflicts`: checkpoint puts refused with a conflict, whether or not they landed.

mod checkpoint_conflicts;
mod commit;
mod fencing;
mod recovery;
mod sweeps;

use std::collections::HashMap;
use std::sync::PoisonError;
use std::time::Instant;

use super::*;
use crate::checkpoint::{read_pending, read_record, write_pending, write_record};
use crate::layout::{OWNER_ID_LEN, checkpoint_path, pending_path};
use crate::parquet::read_parquet;
use crate::test_support::{DAY1, DAY2, dead_letter, feedback, full_event, rollup};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

const STREAM: &str = "genai-spans";

fn batch(first_offset: i64, next_offset: i64) -> FlushBatch {
    let events = (first_offset..next_offset)
        .map(|i| {
            let day = if i % 2 == 0 { DAY1 } else { DAY2 };
            // Reverse time order within the input, so sorting is observable.
            full_event(i, if i % 3 == 0 { "a/b" } else { "chat" }, day + 1_000_000 * (next_offset - i))
        })
        .collect();
    FlushBatch {
        stream: STREAM.into(),
        partition: 2,
        first_offset,
        next_offset,
        events,
        feedback: vec![feedback(first_offset, DAY1 + 5)],
        rollups: vec![rollup(first_offset, DAY2 + 60_000_000_000), rollup(first_offset + 1, DAY1)],
        dead_letters: vec![dead_letter(first_offset, DAY2 + 7)],
        file_head: None,
        claim: None,
    }
}

fn rows_in(batch: &FlushBatch) -> u64 {
    (batch.events.len() + batch.feedback.len() + batch.rollups.len() + batch.dead_letters.len()) as u64
}

/// The data files visible in the lake, by path, with their row counts.
async fn lake_files(store: &LakeStore) -> TestResult<Vec<(String, usize)>> {
    let mut out = Vec::new();
    for kind in ["events", "feedback", "rollups", "dead_letter"] {
        for object in store.list(kind).await? {
            let data = store.get(&object.path).await?.ok_or("listed file vanished")?;
            let rows = read_parquet(data)?.iter().map(|b| b.num_rows()).sum();
            out.push((object.path, rows));
        }
    }
    out.sort();
    Ok(out)
}

/// A data file path without the writer's claim id, to compare lakes written by different writers.
fn without_owner(path: &str) -> String {
    let cut = path.len().saturating_sub(".parquet".len() + OWNER_ID_LEN + 1);
    format!("{}.parquet", &path[..cut])
}

/// [`lake_files`] without claim ids in the names.
async fn lake_ranges(store: &LakeStore) -> TestResult<Vec<(String, usize)>> {
    let mut files: Vec<_> =
        lake_files(store).await?.into_iter().map(|(path, rows)| (without_owner(&path), rows)).collect();
    files.sort();
    Ok(files)
}

/// Total rows per table in the lake, so overlapping writers' results can be compared with the input.
async fn table_rows(store: &LakeStore) -> TestResult<Vec<(&'static str, usize)>> {
    let mut out = Vec::new();
    for kind in ["events", "feedback", "rollups", "dead_letter"] {
        let mut rows = 0;
        for object in store.list(kind).await? {
            let data = store.get(&object.path).await?.ok_or("listed file vanished")?;
            rows += read_parquet(data)?.iter().map(|b| b.num_rows()).sum::<usize>();
        }
        out.push((kind, rows));
    }
    Ok(out)
}

/// Rows in the lake, all tables together.
async fn total_rows(store: &LakeStore) -> TestResult<usize> {
    Ok(table_rows(store).await?.iter().map(|(_, rows)| rows).sum())
}

async fn stores() -> TestResult<Vec<(LakeStore, Option<tempfile::TempDir>)>> {
    let dir = tempfile::tempdir()?;
    let local = LakeStore::open(&dir.path().display().to_string(), &HashMap::new()).await?;
    let memory = LakeStore::open("memory://", &HashMap::new()).await?;
    Ok(vec![(local, Some(dir)), (memory, None)])
}

/// Two writers on the same lake, as two daemons of one consumer group, or a file ingest run twice.
fn two_writers(store: &LakeStore) -> (LakeWriter, LakeWriter) {
    (
        LakeWriter::new(store.clone(), ParquetOptions::default()),
        LakeWriter::new(store.clone(), ParquetOptions::default()),
    )
}

/// Files in the lake whose names carry claim id `owner`.
async fn files_of(store: &LakeStore, owner: &str) -> TestResult<usize> {
    Ok(lake_files(store).await?.iter().filter(|(path, _)| path.ends_with(&format!("-{owner}.parquet"))).count())
}

/// The manifests of partition 2 in the checkpoint directory, by file name.
async fn manifest_names(store: &LakeStore) -> TestResult<Vec<String>> {
    let mut names: Vec<String> = store
        .list(&crate::layout::checkpoint_dir(STREAM))
        .await?
        .into_iter()
        .filter_map(|object| object.path.rsplit('/').next().map(str::to_owned))
        .filter(|name| name.starts_with("2.pending.") || name.starts_with("2.fenced."))
        .collect();
    names.sort();
    Ok(names)
}
