//! A tonic codec for messages whose types are only known at run time.
//!
//! Generated gRPC clients get one prost type per message; PRISM learns the types from pasted
//! `.proto` files or reflection, so it encodes [`DynamicMessage`]s and decodes with a
//! [`MessageDescriptor`] chosen per call. Decoding never fails at the tonic level: a message that
//! does not parse is handed up as [`Decoded::message`] `Err`, so the caller can tell "the server
//! sent bytes that do not match the schema" (a protocol problem it reports) from a gRPC status
//! (which tonic reports through the same error channel).

use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Encodes [`DynamicMessage`]s and decodes messages of one type.
#[derive(Debug, Clone)]
pub struct DynamicCodec {
    response: MessageDescriptor,
}

impl DynamicCodec {
    /// `response` is the type of the messages this codec decodes.
    pub fn new(response: MessageDescriptor) -> Self {
        Self { response }
    }
}

/// One received message and the size of its protobuf encoding.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// `Err` holds why the bytes are not a valid message of the expected type.
    pub message: Result<DynamicMessage, String>,
    pub size: usize,
}

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = Decoded;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        DynamicDecoder {
            descriptor: self.response.clone(),
        }
    }
}

#[derive(Debug)]
pub struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        // `EncodeBuf` grows on demand, so prost's "not enough space" cannot happen; report it
        // rather than panic all the same.
        item.encode(dst)
            .map_err(|err| Status::internal(format!("could not encode the message: {err}")))
    }
}

#[derive(Debug)]
pub struct DynamicDecoder {
    descriptor: MessageDescriptor,
}

impl Decoder for DynamicDecoder {
    type Item = Decoded;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Decoded>, Status> {
        use prost::bytes::Buf;
        let size = src.remaining();
        let message = DynamicMessage::decode(self.descriptor.clone(), &mut *src).map_err(|err| {
            format!(
                "response message is not a valid {}: {err}",
                self.descriptor.full_name()
            )
        });
        // A failed decode may stop early; the frame's rest must not leak into the next one.
        src.advance(src.remaining());
        Ok(Some(Decoded { message, size }))
    }
}
