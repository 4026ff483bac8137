//! Messages for a person, as data: an id and named arguments that a front end words in its own
//! language. The page has a Fluent message for every id (`web/locales/*/graft.ftl`); the engine's
//! own `Display` texts stay the English the CLI prints. Arguments may be messages themselves (a
//! wrapped error, a setting's name), worded first in the same language.

use serde::{Deserialize, Serialize};

/// One argument of a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MessageArg {
    /// Words that are not translated: a file name, a class name, a decoder's detail.
    Text(String),
    /// A number (Fluent picks plural forms by it).
    Number(f64),
    /// Another message, worded in the same language.
    Message(Box<UserMessage>),
}

/// A message id with its arguments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserMessage {
    pub id: String,
    pub args: Vec<(String, MessageArg)>,
}

impl UserMessage {
    pub fn new(id: impl Into<String>) -> Self {
        UserMessage { id: id.into(), args: Vec::new() }
    }

    /// Words made elsewhere (the browser's, a library's), shown as they are.
    pub fn verbatim(words: impl Into<String>) -> Self {
        UserMessage::new("verbatim").arg("words", words.into())
    }

    pub fn arg(mut self, name: &str, value: impl Into<MessageArg>) -> Self {
        self.args.push((name.to_string(), value.into()));
        self
    }
}

macro_rules! arg_from_number {
    ($($t:ty),*) => {$(
        impl From<$t> for MessageArg {
            fn from(n: $t) -> Self {
                MessageArg::Number(n as f64)
            }
        }
    )*};
}
arg_from_number!(f32, f64, u32, u64, usize, i32, i64);

impl From<String> for MessageArg {
    fn from(s: String) -> Self {
        MessageArg::Text(s)
    }
}

impl From<&str> for MessageArg {
    fn from(s: &str) -> Self {
        MessageArg::Text(s.to_string())
    }
}

impl From<&String> for MessageArg {
    fn from(s: &String) -> Self {
        MessageArg::Text(s.clone())
    }
}

impl From<UserMessage> for MessageArg {
    fn from(m: UserMessage) -> Self {
        MessageArg::Message(Box::new(m))
    }
}
