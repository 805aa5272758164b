//! The text of a GenAI message list, so that fingerprints describe what the model said, not the
//! envelope it was sent in.
//!
//! The same answer reaches driftwatch as plain text (a JSON event's `output`, the deprecated
//! `gen_ai.completion`, flattened `gen_ai.completion.N.content`) or as a semconv message list
//! (`gen_ai.output.messages`: `[{"role":"assistant","parts":[{"type":"text","content":"…"}]}]`).
//! Hashing the list as written would give one answer two fingerprints, make an app that moves to
//! the current conventions look like it drifted, and let the list's keys dominate the SimHash of a
//! short answer. [`message_text`] takes the text out of a list; anything else is its own text.
//!
//! Read as messages: a JSON array of objects whose `role` is a chat role (`assistant`, `user`,
//! `system`, `tool`, `developer`, `model`, `function`), or one such object, whose text is in
//! `parts` of type `text` (current semconv) or in `content`, either a string or a list of
//! `{"type":"text","text":…}` parts (the OpenAI chat shape that older instrumentations copy).
//! Text parts are joined with a newline, in order. A list with no text (tool calls only) and
//! anything that is not such a list (a model's own JSON answer) is fingerprinted as written.
//!
//! Only outputs are read this way. An input's other parts (tool results, images, roles) tell
//! inputs apart, and `input_hash` must not take two different inputs for one.

use std::borrow::Cow;
use std::marker::PhantomData;

use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// The roles of chat messages in the GenAI conventions and the providers' APIs.
const ROLES: [&str; 7] = ["assistant", "user", "system", "tool", "developer", "model", "function"];

/// The text `content` carries: the joined text parts of a message list, or `content` itself.
pub fn message_text(content: &str) -> Cow<'_, str> {
    let start = content.trim_start();
    if !(start.starts_with('[') || start.starts_with('{')) {
        return Cow::Borrowed(content);
    }
    let messages = if start.starts_with('[') {
        serde_json::from_str::<Vec<Object<Message<'_>>>>(content)
    } else {
        serde_json::from_str::<Object<Message<'_>>>(content).map(|message| vec![message])
    };
    let Ok(messages) = messages else { return Cow::Borrowed(content) };
    if !messages.iter().all(|Object(message)| ROLES.contains(&message.role.as_ref())) {
        return Cow::Borrowed(content);
    }
    let mut texts = messages.iter().flat_map(|Object(message)| message.texts()).peekable();
    if texts.peek().is_none() {
        return Cow::Borrowed(content);
    }
    let mut joined = String::with_capacity(content.len());
    for (index, text) in texts.enumerate() {
        if index > 0 {
            joined.push('\n');
        }
        joined.push_str(text);
    }
    Cow::Owned(joined)
}

/// A `T` read from a JSON object only: serde's derived structs also take an array of their
/// fields in order, and `["x", [], "final"]` is no message.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Fields<T> {
            type Value = T;
            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer.deserialize_map(Fields(PhantomData)).map(Object)
    }
}

#[derive(Deserialize)]
struct Message<'a> {
    /// Required, and checked against [`ROLES`], so that a JSON answer is not taken for a message.
    #[serde(borrow)]
    role: Cow<'a, str>,
    #[serde(default, borrow)]
    parts: Vec<Object<Part<'a>>>,
    #[serde(default, borrow)]
    content: Option<Content<'a>>,
}

impl Message<'_> {
    fn texts(&self) -> impl Iterator<Item = &str> {
        let from_parts = self.parts.iter().filter_map(|Object(part)| part.text());
        let from_content: Box<dyn Iterator<Item = &str>> = match &self.content {
            Some(Content::Text(text)) => Box::new(std::iter::once(text.as_ref())),
            Some(Content::Parts(parts)) => Box::new(parts.iter().filter_map(|Object(part)| part.text())),
            Some(Content::Other(_)) | None => Box::new(std::iter::empty()),
        };
        from_parts.chain(from_content)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content<'a> {
    #[serde(borrow)]
    Text(Cow<'a, str>),
    #[serde(borrow)]
    Parts(Vec<Object<Part<'a>>>),
    Other(IgnoredAny),
}

/// One part: semconv's `{"type":"text","content":…}` or OpenAI's `{"type":"text","text":…}`;
/// other types (tool calls, images, reasoning) carry no answer text.
#[derive(Deserialize)]
struct Part<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    content: Option<Content<'a>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
}

impl Part<'_> {
    fn text(&self) -> Option<&str> {
        if self.kind.as_deref() != Some("text") {
            return None;
        }
        match (&self.content, &self.text) {
            (Some(Content::Text(text)), _) | (_, Some(text)) => Some(text),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::message_text;

    #[test]
    fn semconv_message_lists_give_their_text_parts() {
        let output =
            r#"[{"role":"assistant","parts":[{"type":"text","content":"It ships today."}],"finish_reason":"stop"}]"#;
        assert_eq!(message_text(output), "It ships today.");
        let several = r#"[{"role":"system","parts":[{"type":"text","content":"Be brief."}]},
            {"role":"user","parts":[{"type":"text","content":"Where is\nmy order?"},{"type":"image","uri":"x"}]},
            {"role":"assistant","parts":[{"type":"tool_call","id":"1","name":"lookup","arguments":{"id":7}}]},
            {"role":"tool","parts":[{"type":"tool_call_response","id":"1","response":{"ok":true}}]}]"#;
        assert_eq!(message_text(several), "Be brief.\nWhere is\nmy order?");
        let one = r#"{"role":"assistant","parts":[{"type":"text","content":"Hi"}]}"#;
        assert_eq!(message_text(one), "Hi");
    }

    #[test]
    fn openai_shaped_messages_give_their_content() {
        let text = r#"[{"role":"user","content":"Summarise this"},{"role":"assistant","content":null}]"#;
        assert_eq!(message_text(text), "Summarise this");
        let parts = r#"[{"role":"user","content":[{"type":"text","text":"Describe"},{"type":"image_url","image_url":{"url":"u"}}]}]"#;
        assert_eq!(message_text(parts), "Describe");
    }

    #[test]
    fn everything_else_is_its_own_text() {
        for text in [
            "A plain answer.",
            r#"{"invoice_total": 42, "content": "not a message"}"#,
            r#"["a", "list", "of", "strings"]"#,
            r#"[{"role":"assistant","parts":[{"type":"tool_call","name":"f"}]}]"#,
            r#"[{"role":"assistant","parts":[{"type":"text","content":"unfinished"#,
            r#"[{"role":"engineer","content":"a JSON answer that has a role field"}]"#,
            r#"["x", [], "final"]"#,
            r#"[["user", [], "hi"]]"#,
            r#"{"role":"user","parts":[["text","hi"]]}"#,
            "",
        ] {
            assert_eq!(message_text(text), text);
        }
    }
}
