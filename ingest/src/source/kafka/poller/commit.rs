//! Offset commits to Kafka. They are advisory, for lag tools: the lake checkpoint is where
//! partitions resume. Only partitions this member still owns are committed.

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaResult;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::PollerContext;

/// A topic-partition list with explicit offsets.
pub fn offsets_list(offsets: &[(String, i32, i64)]) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for (topic, partition, offset) in offsets {
        let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset));
    }
    tpl
}

/// The offsets of partitions still in `assignment`. A flush can complete after its partition
/// was released (a revoke that timed out, a lost assignment, a revoke during the final flush),
/// and the classic group protocol lets any member commit any partition: committing it then
/// could move the new owner's committed offset backwards, misleading lag tools.
fn still_assigned(assignment: &TopicPartitionList, offsets: Vec<(String, i32, i64)>) -> Vec<(String, i32, i64)> {
    offsets.into_iter().filter(|(topic, partition, _)| assignment.find_partition(topic, *partition).is_some()).collect()
}

/// Commit `offsets` of the partitions this member still owns.
pub(super) fn commit_owned(
    consumer: &BaseConsumer<PollerContext>,
    offsets: Vec<(String, i32, i64)>,
    mode: CommitMode,
) -> KafkaResult<()> {
    let owned = still_assigned(&consumer.assignment()?, offsets);
    if owned.is_empty() {
        return Ok(());
    }
    consumer.commit(&offsets_list(&owned), mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_of_partitions_released_meanwhile_are_not_committed() {
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition("spans", 0);
        assignment.add_partition("events", 2);
        let offsets = vec![
            ("spans".to_owned(), 0, 10),
            ("spans".to_owned(), 1, 20),
            ("events".to_owned(), 2, 30),
            ("logs".to_owned(), 0, 40),
        ];
        assert_eq!(
            still_assigned(&assignment, offsets),
            vec![("spans".to_owned(), 0, 10), ("events".to_owned(), 2, 30)]
        );
        assert!(still_assigned(&TopicPartitionList::new(), vec![("spans".to_owned(), 0, 10)]).is_empty());
    }
}
