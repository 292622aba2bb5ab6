//! Schemas as [`DescriptorPool`]s: compiled from pasted `.proto` files with protox, and looked up
//! by the service and method names users type.
//!
//! Compilation happens in memory: the user's files are served to protox by name (so they may
//! import each other by the names they were given) and `google/protobuf/*.proto` come from the
//! copies protox ships, so the well-known types need not be pasted. Nothing touches the disk.

use std::collections::HashMap;

use miette::Diagnostic;
use prism_domain::request::ProtoFile;
use prost_reflect::{DescriptorPool, MethodDescriptor, ServiceDescriptor};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};
use serde::Serialize;

use crate::error::{GrpcRequestError, ProtoLocation};

/// A service as the UI lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceInfo {
    /// Fully qualified, e.g. `acme.orders.v1.Orders`.
    pub name: String,
    pub methods: Vec<MethodInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MethodInfo {
    pub name: String,
    pub client_streaming: bool,
    pub server_streaming: bool,
    /// Fully qualified message type names.
    pub input_type: String,
    pub output_type: String,
}

impl ServiceInfo {
    pub(crate) fn from_descriptor(service: &ServiceDescriptor) -> Self {
        ServiceInfo {
            name: service.full_name().to_owned(),
            methods: service
                .methods()
                .map(|m| MethodInfo {
                    name: m.name().to_owned(),
                    client_streaming: m.is_client_streaming(),
                    server_streaming: m.is_server_streaming(),
                    input_type: m.input().full_name().to_owned(),
                    output_type: m.output().full_name().to_owned(),
                })
                .collect(),
        }
    }
}

/// Every service defined in `pool`, sorted by name.
pub(crate) fn services(pool: &DescriptorPool) -> Vec<ServiceInfo> {
    let mut out: Vec<ServiceInfo> = pool
        .services()
        .map(|s| ServiceInfo::from_descriptor(&s))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Compiles the pasted files (each may import the others and the well-known types).
pub(crate) fn compile_files(files: &[ProtoFile]) -> Result<DescriptorPool, GrpcRequestError> {
    if files.is_empty() {
        return Err(GrpcRequestError::InvalidProto {
            location: None,
            message: "no .proto files given: paste at least one, or use server reflection".into(),
        });
    }
    let mut sources = HashMap::new();
    for file in files {
        let name = file.name.trim();
        if name.is_empty() {
            return Err(GrpcRequestError::InvalidProto {
                location: None,
                message: "a .proto file has no name".into(),
            });
        }
        if sources
            .insert(name.to_owned(), file.content.clone())
            .is_some()
        {
            return Err(GrpcRequestError::InvalidProto {
                location: None,
                message: format!("two .proto files are named {name:?}"),
            });
        }
    }
    // protox is a parser of arbitrary user text; should it ever panic on some input, that is
    // reported as a bad proto rather than taking the caller down.
    std::panic::catch_unwind(|| compile(files, &sources)).unwrap_or_else(|_| {
        Err(GrpcRequestError::InvalidProto {
            location: None,
            message: "the .proto compiler failed on these files".into(),
        })
    })
}

fn compile(
    files: &[ProtoFile],
    sources: &HashMap<String, String>,
) -> Result<DescriptorPool, GrpcRequestError> {
    let mut resolver = ChainFileResolver::new();
    resolver.add(PastedFiles(sources.clone()));
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true);
    for file in files {
        compiler
            .open_file(file.name.trim())
            .map_err(|err| compile_error(&err, sources))?;
    }
    Ok(compiler.descriptor_pool())
}

/// The pasted files, by the names imports use.
struct PastedFiles(HashMap<String, String>);

impl FileResolver for PastedFiles {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.0.get(name) {
            Some(source) => File::from_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// protox reports where an error is as a byte span in a named source; users need
/// `file:line:column`.
fn compile_error(err: &protox::Error, sources: &HashMap<String, String>) -> GrpcRequestError {
    let file = err.file().map(str::to_owned);
    let offset = err
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|label| label.offset());
    let location = file.map(|file| {
        let (line, column) = match (offset, sources.get(&file)) {
            (Some(offset), Some(source)) => {
                let (line, column) = line_column(source, offset);
                (Some(line), Some(column))
            }
            _ => (None, None),
        };
        ProtoLocation { file, line, column }
    });
    let mut message = err.to_string();
    if let Some(help) = err.help() {
        message = format!("{message} ({help})");
    }
    GrpcRequestError::InvalidProto { location, message }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(source: &str, offset: usize) -> (u32, u32) {
    let mut end = offset.min(source.len());
    while !source.is_char_boundary(end) {
        end -= 1;
    }
    let before = &source[..end];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit_once('\n')
        .map_or(before, |(_, last)| last)
        .chars()
        .count()
        + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

/// Finds a service by fully qualified name, or by simple name when exactly one service has it.
pub(crate) fn find_service(
    pool: &DescriptorPool,
    name: &str,
) -> Result<ServiceDescriptor, GrpcRequestError> {
    let wanted = name.trim().trim_start_matches('.');
    if let Some(service) = pool.get_service_by_name(wanted) {
        return Ok(service);
    }
    let matches: Vec<ServiceDescriptor> = pool.services().filter(|s| s.name() == wanted).collect();
    match matches.as_slice() {
        [one] => Ok(one.clone()),
        [] => {
            let names: Vec<String> = pool.services().map(|s| s.full_name().to_owned()).collect();
            Err(GrpcRequestError::UnknownService(unknown_service_message(
                wanted, &names,
            )))
        }
        many => Err(GrpcRequestError::UnknownService(format!(
            "service name {wanted:?} is ambiguous: it matches {}; give the fully qualified name",
            many.iter()
                .map(|s| s.full_name().to_owned())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

pub(crate) fn unknown_service_message(wanted: &str, available: &[String]) -> String {
    let mut names: Vec<&str> = available.iter().map(String::as_str).collect();
    names.sort_unstable();
    if names.is_empty() {
        format!("unknown service {wanted:?}: the schema defines no services")
    } else {
        format!(
            "unknown service {wanted:?}; available services: {}",
            list(&names)
        )
    }
}

pub(crate) fn find_method(
    service: &ServiceDescriptor,
    name: &str,
) -> Result<MethodDescriptor, GrpcRequestError> {
    let wanted = name.trim();
    service
        .methods()
        .find(|m| m.name() == wanted)
        .ok_or_else(|| {
            let names: Vec<String> = service.methods().map(|m| m.name().to_owned()).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            GrpcRequestError::UnknownMethod(if names.is_empty() {
                format!(
                    "unknown method {wanted:?}: service {} has no methods",
                    service.full_name()
                )
            } else {
                format!(
                    "unknown method {wanted:?} in service {}; available methods: {}",
                    service.full_name(),
                    list(&names)
                )
            })
        })
}

/// A comma-separated list, shortened past 50 entries so a huge schema cannot make a huge message.
fn list(names: &[&str]) -> String {
    const SHOWN: usize = 50;
    let mut text = names
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, content: &str) -> ProtoFile {
        ProtoFile {
            name: name.into(),
            content: content.into(),
        }
    }

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let source = "ab\ncé d\n";
        assert_eq!(line_column(source, 0), (1, 1));
        assert_eq!(line_column(source, 3), (2, 1));
        // 'd' comes after the two-byte 'é' and a space.
        assert_eq!(line_column(source, source.find('d').unwrap()), (2, 4));
        assert_eq!(line_column(source, 10_000), (3, 1));
    }

    #[test]
    fn services_resolve_by_full_or_unique_simple_name() {
        let pool = compile_files(&[
            file(
                "a.proto",
                "syntax = \"proto3\"; package a; import \"google/protobuf/empty.proto\";
                 service S { rpc M(google.protobuf.Empty) returns (google.protobuf.Empty); }
                 service Only { rpc N(google.protobuf.Empty) returns (google.protobuf.Empty); }",
            ),
            file(
                "b.proto",
                "syntax = \"proto3\"; package b; import \"google/protobuf/empty.proto\";
                 service S { rpc M(google.protobuf.Empty) returns (google.protobuf.Empty); }",
            ),
        ])
        .unwrap();
        assert_eq!(find_service(&pool, "a.S").unwrap().full_name(), "a.S");
        assert_eq!(find_service(&pool, ".b.S").unwrap().full_name(), "b.S");
        assert_eq!(find_service(&pool, "Only").unwrap().full_name(), "a.Only");
        let err = find_service(&pool, "S").unwrap_err();
        assert!(err.to_string().contains("ambiguous"), "{err}");
        let err = find_service(&pool, "Nope").unwrap_err();
        assert_eq!(err.code(), "unknown_service");
        assert!(err.to_string().contains("a.Only, a.S, b.S"), "{err}");
        let service = find_service(&pool, "a.S").unwrap();
        let err = find_method(&service, "X").unwrap_err();
        assert_eq!(err.code(), "unknown_method");
        assert!(err.to_string().contains("available methods: M"), "{err}");
    }

    #[test]
    fn empty_duplicate_and_missing_files_are_invalid_proto() {
        assert_eq!(compile_files(&[]).unwrap_err().code(), "invalid_proto");
        let twice = [file("a.proto", ""), file("a.proto", "")];
        assert!(
            compile_files(&twice)
                .unwrap_err()
                .to_string()
                .contains("two")
        );
        let missing = [file(
            "a.proto",
            "syntax = \"proto3\";\nimport \"b.proto\";\n",
        )];
        let err = compile_files(&missing).unwrap_err();
        assert_eq!(err.code(), "invalid_proto");
        assert!(err.to_string().starts_with("a.proto:2:"), "{err}");
        assert!(err.to_string().contains("b.proto"), "{err}");
    }
}
