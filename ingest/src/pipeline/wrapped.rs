//! Calls reported twice by nesting. Some instrumentations wrap a call in a span of the same
//! operation (the AI SDK's OpenTelemetry integration around each `embed()`; a framework's LLM
//! span around the client's, when both are in one trace), so one call arrives as two. The inner
//! span, the client's, carries the response id and the cache counts; the wrapper is skipped, as
//! a span that is no call.
//!
//! A span ends after the spans inside it and exporters send spans as they end, so the inner call
//! usually comes first, in the same message or an earlier one. The calls that have a parent are
//! remembered (at least the last [`REMEMBERED`] of them), and a span that one of them names as its
//! parent, with the same operation, is a wrapper. A wrapper read before its call (from another
//! partition, or after a restart, which starts with an empty memory) is still counted as a call.

use std::hash::BuildHasher;

use crate::decode::Decoded;
use crate::id_key::RecentMap;

/// Calls with a parent remembered: a wrapper ends milliseconds after its call, so this covers
/// seconds to minutes of a busy fleet in at most a few megabytes.
pub(crate) const REMEMBERED: usize = 20_000;

/// The calls with a parent seen recently, by trace and parent span id, with their operation.
#[derive(Debug)]
pub(crate) struct WrappedCalls {
    parents: RecentMap<u64>,
}

impl WrappedCalls {
    pub(crate) fn new() -> Self {
        Self { parents: RecentMap::new(REMEMBERED) }
    }

    /// The places in `decoded.events` of the calls that wrap another call, in increasing order;
    /// the message's calls that have a parent are remembered first, so a wrapper and its call in
    /// one message are told apart too.
    pub(crate) fn wrappers(&mut self, decoded: &Decoded) -> Vec<usize> {
        for span in &decoded.nested {
            if let Some(parent) = span.parent {
                self.parents
                    .insert(span_key(span.trace_id, parent), operation_key(&decoded.events[span.event].operation));
            }
        }
        // A root span too may wrap a call read before it; only with nothing remembered is there
        // nothing to look up (a fleet whose calls are all roots).
        if self.parents.is_empty() {
            return Vec::new();
        }
        decoded
            .nested
            .iter()
            .filter(|span| {
                self.parents.get(&span_key(span.trace_id, span.span_id))
                    == Some(&operation_key(&decoded.events[span.event].operation))
            })
            .map(|span| span.event)
            .collect()
    }
}

/// One key for a span: its trace id with its span id folded into both halves.
fn span_key(trace_id: u128, span_id: u64) -> u128 {
    trace_id ^ (u128::from(span_id) << 64 | u128::from(span_id))
}

fn operation_key(operation: &str) -> u64 {
    rustc_hash::FxBuildHasher.hash_one(operation)
}

#[cfg(test)]
mod tests {
    use driftwatch_lake::model::InferenceEvent;

    use super::*;
    use crate::decode::NestedSpan;

    /// A message of calls, each `(span id, parent id, operation)` in trace 7.
    fn message(spans: &[(u64, Option<u64>, &str)]) -> Decoded {
        let mut decoded = Decoded::default();
        for (event, &(span_id, parent, operation)) in spans.iter().enumerate() {
            decoded.events.push(InferenceEvent { operation: operation.to_owned(), ..InferenceEvent::default() });
            decoded.nested.push(NestedSpan { event, trace_id: 7, span_id, parent });
        }
        decoded
    }

    #[test]
    fn a_wrapper_is_told_in_its_calls_message_and_after_it() {
        let mut wrapped = WrappedCalls::new();
        // In one message: the wrapper (1) around two attempts (2, 3); 4 wraps a call of another
        // operation; 6 names a parent that is no call here.
        let spans = [
            (1, Some(100), "chat"),
            (2, Some(1), "chat"),
            (3, Some(1), "chat"),
            (4, None, "invoke_agent"),
            (5, Some(4), "chat"),
            (6, Some(99), "chat"),
        ];
        assert_eq!(wrapped.wrappers(&message(&spans)), [0]);
        // Exported as each span ends: the call, then its wrapper, in the next message.
        assert_eq!(wrapped.wrappers(&message(&[(11, Some(10), "embeddings")])), Vec::<usize>::new());
        assert_eq!(wrapped.wrappers(&message(&[(10, Some(200), "embeddings")])), [0]);
        // A wrapper read before its call is counted: nothing says yet that it wraps one.
        assert_eq!(wrapped.wrappers(&message(&[(20, None, "chat")])), Vec::<usize>::new());
        assert_eq!(wrapped.wrappers(&message(&[(21, Some(20), "chat")])), Vec::<usize>::new());
        // Roots that wrap no call seen are calls; a root that wraps one read earlier is not.
        assert_eq!(wrapped.wrappers(&message(&[(30, None, "chat"), (31, None, "chat")])), Vec::<usize>::new());
        assert_eq!(wrapped.wrappers(&message(&[(41, Some(40), "chat")])), Vec::<usize>::new());
        assert_eq!(wrapped.wrappers(&message(&[(40, None, "chat")])), [0]);
        // With nothing remembered, nothing is a wrapper.
        assert_eq!(WrappedCalls::new().wrappers(&message(&[(41, Some(40), "chat")])), Vec::<usize>::new());
    }
}
