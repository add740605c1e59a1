//! Why a client call failed: the server refused the request (its
//! [`ErrorCode`]: the request changed nothing), or the exchange itself went
//! wrong (the answer is not a reply of this protocol, is a reply of the
//! wrong kind, or the server speaks another version). The two are kept
//! apart so that a transport or protocol problem is never reported as one
//! of the server's codes. Serializable, so a program can pass it on in a
//! message (the test agents report it to the root task).

use core::fmt;
use memserver_protocol::{ErrorCode, Word, Words};
use serde::{Deserialize, Serialize};

/// Why a call to the memory server did not return what was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientError {
    /// The server refused the request with this code; it changed nothing.
    Server(ErrorCode),
    /// The server answered the hello with another protocol version.
    VersionMismatch {
        /// The client's [`PROTOCOL_VERSION`](memserver_protocol::PROTOCOL_VERSION).
        client: u16,
        /// The server's.
        server: u16,
    },
    /// The reply decoded, but it is not of the kind the request gets.
    WrongReply {
        /// The request's wire code (its position in
        /// [`Request`](memserver_protocol::Request)).
        request: u32,
        /// The reply's wire code (its position in
        /// [`Reply`](memserver_protocol::Reply)).
        reply: u32,
    },
    /// The answer is not a reply of this protocol version.
    Undecodable {
        /// What is wrong with it.
        why: Undecodable,
        /// The answer's message label.
        label: u64,
        /// Its length in words.
        length: u64,
        /// Its first word (0 if it has none): where the reply's wire code is.
        first_word: Word,
    },
    /// The request does not fit a message (no request of this protocol
    /// version is that large: `memserver-protocol` checks its maximum).
    TooLarge,
}

/// What makes an answer not a reply of the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Undecodable {
    /// Its label is not the protocol's (`PROTOCOL_LABEL`).
    NotProtocol,
    /// Its wire code is past the last kind of reply.
    UnknownOperation,
    /// Its words are not a valid reply (cut short, or bad fields).
    Malformed,
}

/// Splits `result` into the server's answer (what it returned or the code
/// it refused with) and any other problem of the exchange: for callers
/// that handle refusals and treat the rest as failures.
pub fn server_answer<T>(result: Result<T, ClientError>) -> Result<Result<T, ErrorCode>, ClientError> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(ClientError::Server(code)) => Ok(Err(code)),
        Err(other) => Err(other),
    }
}

/// The wire code of `message` (a request or a reply): the position of its
/// variant, which `postcard` encodes first ([`u32::MAX`] if it does not
/// encode, which no protocol message does).
pub(crate) fn wire_code<T: Serialize>(message: &T) -> u32 {
    Words::encode(message).and_then(|words| words.decode::<u32>(u32::MAX).ok()).unwrap_or(u32::MAX)
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Server(code) => write!(f, "the server refused the request: {code:?}"),
            ClientError::VersionMismatch { client, server } => {
                write!(f, "protocol version {client} of the client against {server} of the server")
            }
            ClientError::WrongReply { request, reply } => {
                write!(f, "request of wire code {request} answered by a reply of wire code {reply}, of another kind")
            }
            ClientError::Undecodable { why, label, length, first_word } => {
                write!(f, "not a reply ({why}): label {label}, {length} words, first word {first_word:#x}")
            }
            ClientError::TooLarge => write!(f, "the request does not fit a message"),
        }
    }
}

impl fmt::Display for Undecodable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Undecodable::NotProtocol => "not the protocol's label",
            Undecodable::UnknownOperation => "unknown kind of reply",
            Undecodable::Malformed => "malformed",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::{every_reply, every_request};
    use memserver_protocol::{REPLIES, REQUESTS};

    #[test]
    fn wire_codes_are_the_variant_positions() {
        assert!(every_request().map(|r| wire_code(&r)).eq(0..REQUESTS));
        assert!(every_reply().map(|r| wire_code(&r)).eq(0..REPLIES));
    }

    #[test]
    fn only_a_refusal_is_the_servers_answer() {
        assert_eq!(server_answer::<u8>(Err(ClientError::Server(ErrorCode::NotFound))), Ok(Err(ErrorCode::NotFound)));
        assert_eq!(server_answer(Ok(3)), Ok(Ok(3)));
        let wrong = ClientError::WrongReply { request: 1, reply: 2 };
        assert_eq!(server_answer::<u8>(Err(wrong)), Err(wrong));
    }
}
