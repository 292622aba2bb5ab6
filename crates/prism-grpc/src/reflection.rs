//! A client for gRPC server reflection: which services a server has, and the file descriptors
//! that define them.
//!
//! Servers speak `grpc.reflection.v1` or only the older `grpc.reflection.v1alpha`; the first
//! request tries v1 and falls back to v1alpha when v1 answers `UNIMPLEMENTED`. The two versions
//! are the same protocol under different names (identical messages and field numbers), so one
//! set of message types (tonic-reflection's `pb::v1`) is sent to whichever path the server has.
//!
//! Every question is its own short stream on the channel's connection. Servers differ in how they
//! report a missing file: grpc-go answers with an `ErrorResponse` and keeps the stream open,
//! tonic-reflection ends the stream with a status. One question per stream handles both alike.
//!
//! A `FileContainingSymbol` answer may or may not include the file's imports; missing ones are
//! asked for with `FileByFilename`. A server that does not serve the well-known types
//! (`google/protobuf/*.proto`) gets them from protox's bundled copies.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;

use prism_domain::execution::ErrorKind;
use prost::Message;
use prost_reflect::DescriptorPool;
use prost_reflect::prost_types::FileDescriptorProto;
use tokio::time::Instant;
use tonic::client::Grpc;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_prost::ProstCodec;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

use crate::error::GrpcRequestError;
use crate::transport::transport_failure;

/// At most this many files per schema: real schemas have tens; a server answering with an
/// endless import graph must not keep PRISM busy (or growing) forever.
const MAX_FILES: usize = 1_000;

/// Why a schema could not be fetched.
#[derive(Debug)]
pub(crate) enum ReflectionFailure {
    /// Something to tell the user about the request or the server's reflection support.
    Request(GrpcRequestError),
    /// The server could not be reached or the exchange broke: an outcome, not a request error.
    Transport { kind: ErrorKind, message: String },
}

impl From<GrpcRequestError> for ReflectionFailure {
    fn from(err: GrpcRequestError) -> Self {
        ReflectionFailure::Request(err)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V1Alpha,
}

impl Version {
    fn path(self) -> &'static str {
        match self {
            Version::V1 => "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            Version::V1Alpha => "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        }
    }
}

/// A failed question: a transport failure, or the server's answer.
enum AskError {
    Failure(ReflectionFailure),
    Status(Status),
}

/// Asks one server reflection questions until `deadline`.
pub(crate) struct Reflector {
    channel: Channel,
    metadata: MetadataMap,
    /// Decided by the first question.
    version: Option<Version>,
    max_message_bytes: usize,
    deadline: Instant,
    /// For messages: the address as the user gave it.
    address: String,
}

impl Reflector {
    pub(crate) fn new(
        channel: Channel,
        metadata: MetadataMap,
        max_message_bytes: usize,
        deadline: Instant,
        address: &str,
    ) -> Self {
        Self {
            channel,
            metadata,
            version: None,
            max_message_bytes,
            deadline,
            address: address.trim().to_owned(),
        }
    }

    /// The fully qualified names of the services the server lists.
    pub(crate) async fn list_services(&mut self) -> Result<Vec<String>, ReflectionFailure> {
        match self.ask(MessageRequest::ListServices(String::new())).await {
            Ok(MessageResponse::ListServicesResponse(list)) => {
                Ok(list.service.into_iter().map(|s| s.name).collect())
            }
            Ok(_) => Err(self.failed("the server answered ListServices with something else")),
            Err(AskError::Failure(failure)) => Err(failure),
            Err(AskError::Status(status)) => Err(self.failed(&format!(
                "listing services failed: {}",
                describe_status(&status)
            ))),
        }
    }

    /// Adds the file defining `symbol` and, transitively, its imports to `files`.
    pub(crate) async fn fetch_symbol(
        &mut self,
        symbol: &str,
        files: &mut HashMap<String, FileDescriptorProto>,
    ) -> Result<(), ReflectionFailure> {
        let answer = self
            .ask(MessageRequest::FileContainingSymbol(symbol.to_owned()))
            .await;
        self.add_files(answer, &format!("the file defining {symbol}"), files)?;
        let mut unavailable_wkt = Vec::new();
        let mut asked = HashSet::new();
        loop {
            let missing: Vec<String> = files
                .values()
                .flat_map(|f| f.dependency.iter())
                .filter(|dep| !files.contains_key(*dep) && !asked.contains(*dep))
                .cloned()
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            if missing.is_empty() {
                break;
            }
            for dep in missing {
                asked.insert(dep.clone());
                let answer = self.ask(MessageRequest::FileByFilename(dep.clone())).await;
                match answer {
                    Err(AskError::Status(status))
                        if status.code() == Code::NotFound
                            && dep.starts_with("google/protobuf/") =>
                    {
                        unavailable_wkt.push(dep);
                    }
                    answer => self.add_files(answer, &dep, files)?,
                }
            }
        }
        if !unavailable_wkt.is_empty() {
            add_bundled_well_known_types(&unavailable_wkt, files)
                .map_err(|why| self.failed(&why))?;
        }
        Ok(())
    }

    fn add_files(
        &self,
        answer: Result<MessageResponse, AskError>,
        what: &str,
        files: &mut HashMap<String, FileDescriptorProto>,
    ) -> Result<(), ReflectionFailure> {
        let response = match answer {
            Ok(MessageResponse::FileDescriptorResponse(response)) => response,
            Ok(_) => return Err(self.failed(&format!("unexpected answer when asking for {what}"))),
            Err(AskError::Failure(failure)) => return Err(failure),
            Err(AskError::Status(status)) => {
                return Err(self.failed(&format!(
                    "could not get {what}: {}",
                    describe_status(&status)
                )));
            }
        };
        for bytes in response.file_descriptor_proto {
            let file = FileDescriptorProto::decode(bytes.as_slice()).map_err(|err| {
                self.failed(&format!(
                    "the server sent an undecodable descriptor for {what}: {err}"
                ))
            })?;
            let name = file.name().to_owned();
            files.entry(name).or_insert(file);
        }
        if files.len() > MAX_FILES {
            return Err(self.failed(&format!("the schema has more than {MAX_FILES} files")));
        }
        Ok(())
    }

    /// One question, on the version already found to work or (the first time) v1 then v1alpha.
    async fn ask(&mut self, request: MessageRequest) -> Result<MessageResponse, AskError> {
        if let Some(version) = self.version {
            return self.ask_version(version, request).await;
        }
        match self.ask_version(Version::V1, request.clone()).await {
            Err(AskError::Status(status)) if status.code() == Code::Unimplemented => {}
            answer => {
                self.version = Some(Version::V1);
                return answer;
            }
        }
        match self.ask_version(Version::V1Alpha, request).await {
            Err(AskError::Status(status)) if status.code() == Code::Unimplemented => {
                Err(AskError::Failure(ReflectionFailure::Request(
                    GrpcRequestError::ReflectionFailed(format!(
                        "the server at {} does not support gRPC server reflection \
                         (neither grpc.reflection.v1 nor v1alpha); paste the service's .proto \
                         files instead",
                        self.address
                    )),
                )))
            }
            answer => {
                self.version = Some(Version::V1Alpha);
                answer
            }
        }
    }

    async fn ask_version(
        &self,
        version: Version,
        request: MessageRequest,
    ) -> Result<MessageResponse, AskError> {
        let exchange = async {
            let mut grpc =
                Grpc::new(self.channel.clone()).max_decoding_message_size(self.max_message_bytes);
            grpc.ready()
                .await
                .map_err(|err| Status::from_error(Box::new(err)))?;
            let message = ServerReflectionRequest {
                host: String::new(),
                message_request: Some(request),
            };
            let mut call = tonic::Request::new(futures_util::stream::iter([message]));
            *call.metadata_mut() = self.metadata.clone();
            let codec = ProstCodec::<ServerReflectionRequest, ServerReflectionResponse>::default();
            let response = grpc
                .streaming(call, PathAndQuery::from_static(version.path()), codec)
                .await?;
            let mut stream = response.into_inner();
            match stream.message().await? {
                Some(ServerReflectionResponse {
                    message_response: Some(answer),
                    ..
                }) => Ok(answer),
                _ => Err(Status::internal(
                    "the reflection stream ended without an answer",
                )),
            }
        };
        // As for calls (see `call::run`): a malformed answer must not panic the caller.
        let exchange = AssertUnwindSafe(exchange).catch_unwind();
        let answer = match tokio::time::timeout_at(self.deadline, exchange).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_panicked)) => {
                return Err(AskError::Failure(ReflectionFailure::Transport {
                    kind: ErrorKind::Protocol,
                    message: "the server's reflection answer could not be processed (malformed \
                              gRPC metadata)"
                        .into(),
                }));
            }
            Err(_) => {
                return Err(AskError::Failure(ReflectionFailure::Transport {
                    kind: ErrorKind::Timeout,
                    message: "timed out while fetching the schema by server reflection".into(),
                }));
            }
        };
        match answer {
            Ok(MessageResponse::ErrorResponse(err)) => Err(AskError::Status(Status::new(
                Code::from_i32(err.error_code),
                err.error_message,
            ))),
            Ok(answer) => Ok(answer),
            Err(status) => match transport_failure(&status) {
                Some((kind, message)) => Err(AskError::Failure(ReflectionFailure::Transport {
                    kind,
                    message,
                })),
                None => Err(AskError::Status(status)),
            },
        }
    }

    fn failed(&self, why: &str) -> ReflectionFailure {
        ReflectionFailure::Request(GrpcRequestError::ReflectionFailed(format!(
            "server reflection at {} failed: {why}",
            self.address
        )))
    }
}

/// Builds a pool from fetched files, in any order.
pub(crate) fn build_pool(
    files: &HashMap<String, FileDescriptorProto>,
    address: &str,
) -> Result<DescriptorPool, GrpcRequestError> {
    let mut pool = DescriptorPool::new();
    pool.add_file_descriptor_protos(files.values().cloned())
        .map_err(|err| {
            GrpcRequestError::ReflectionFailed(format!(
                "server reflection at {}: the server's descriptors are invalid: {err}",
                address.trim()
            ))
        })?;
    Ok(pool)
}

/// True when one of `files` defines the service `full_name`.
pub(crate) fn defines_service(
    files: &HashMap<String, FileDescriptorProto>,
    full_name: &str,
) -> bool {
    files.values().any(|file| {
        file.service.iter().any(|service| {
            let name = service.name();
            match file.package() {
                "" => full_name == name,
                package => {
                    full_name
                        .strip_prefix(package)
                        .and_then(|rest| rest.strip_prefix('.'))
                        == Some(name)
                }
            }
        })
    })
}

/// Compiles the requested well-known types (and their imports) from protox's bundled sources.
fn add_bundled_well_known_types(
    names: &[String],
    files: &mut HashMap<String, FileDescriptorProto>,
) -> Result<(), String> {
    let mut compiler =
        protox::Compiler::with_file_resolver(protox::file::GoogleFileResolver::new());
    compiler.include_imports(true);
    for name in names {
        compiler
            .open_file(name)
            .map_err(|err| format!("the server could not provide {name}: {err}"))?;
    }
    for file in compiler.file_descriptor_set().file {
        files.entry(file.name().to_owned()).or_insert(file);
    }
    Ok(())
}

fn describe_status(status: &Status) -> String {
    let name = crate::outcome::status_name(status.code() as i32);
    if status.message().is_empty() {
        name.to_owned()
    } else {
        format!("{name}: {}", status.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_found_in_files_by_package() {
        let file = FileDescriptorProto {
            name: Some("a.proto".into()),
            package: Some("acme.v1".into()),
            service: vec![prost_reflect::prost_types::ServiceDescriptorProto {
                name: Some("Orders".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let files = HashMap::from([("a.proto".to_owned(), file)]);
        assert!(defines_service(&files, "acme.v1.Orders"));
        assert!(!defines_service(&files, "acme.Orders"));
        assert!(!defines_service(&files, "Orders"));
    }

    #[test]
    fn bundled_well_known_types_bring_their_imports() {
        let mut files = HashMap::new();
        add_bundled_well_known_types(&["google/protobuf/api.proto".into()], &mut files).unwrap();
        assert!(files.contains_key("google/protobuf/api.proto"));
        assert!(files.contains_key("google/protobuf/type.proto"));
        assert!(build_pool(&files, "x").is_ok());
    }
}
