//! gRPC: the vending machine contract (`emporium.vending.v1`), health and reflection.
//!
//! The contract lives in `proto/emporium/vending/v1/vending.proto`; `build.rs` generates the
//! messages, the `MachineGateway` server and client, and a file descriptor set into `OUT_DIR`
//! with tonic-prost-build and a vendored `protoc`.
//!
//! - [`pb`]: the generated messages, plus `pb::machine_gateway_server` (the server trait
//!   `MachineGateway` and `MachineGatewayServer`) and `pb::machine_gateway_client` (the tonic
//!   client the `vm-sim` simulator will use).
//! - [`reflection_service`] / [`reflection_service_v1alpha`]: gRPC server reflection over the
//!   descriptor set, so `grpcurl` can list and call services without the proto file.
//! - [`health_service`]: the standard `grpc.health.v1.Health` service for `grpc_health_probe`.
//!
//! - [`gateway`]: the `MachineGateway.Session` handler (Hello, Welcome, durable acks).
//! - [`sessions`]: the live sessions of this node; where machine commands are pushed.
//! - [`convert`]: wire messages to and from the machine aggregate's inputs and commands.
//! - [`limits`]: connections per IP and in all, streams and pending `Hello`s per node.
//! - [`incoming`]: the accept loop (caps, optional TLS, the first-byte deadline).
//! - [`server`]: the listener (`--grpc-addr` / `grpc.addr`) serving all of the above.

pub mod convert;
pub mod gateway;
pub mod incoming;
pub mod limits;
pub mod server;
pub mod sessions;

pub use sessions::Sessions;

/// The generated protobuf messages and services of `emporium.vending.v1`.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    clippy::redundant_clone
)]
pub mod pb {
    tonic::include_proto!("emporium.vending.v1");
}

use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::server::HealthReporter;
use tonic_reflection::server::{v1, v1alpha};

/// The encoded `FileDescriptorSet` of `emporium.vending.v1`, as written by `build.rs`.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("vending_descriptor");

/// The fully qualified name of the machine gateway service, as reflection and health know it.
pub const MACHINE_GATEWAY_SERVICE: &str = "emporium.vending.v1.MachineGateway";

/// The gRPC server reflection service (`grpc.reflection.v1`) for `emporium.vending.v1` and
/// the reflection service itself.
///
/// Fails only if the compiled-in descriptor set is malformed, which is a build bug.
pub fn reflection_service(
) -> Result<v1::ServerReflectionServer<impl v1::ServerReflection>, tonic_reflection::server::Error>
{
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .build_v1()
}

/// The older `grpc.reflection.v1alpha` reflection service, for clients that only speak it.
///
/// Fails only if the compiled-in descriptor set is malformed, which is a build bug.
pub fn reflection_service_v1alpha() -> Result<
    v1alpha::ServerReflectionServer<impl v1alpha::ServerReflection>,
    tonic_reflection::server::Error,
> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .build_v1alpha()
}

/// The `grpc.health.v1.Health` service and the reporter that sets its statuses.
///
/// The overall status (service name `""`) starts as `SERVING`; set the status of
/// [`MACHINE_GATEWAY_SERVICE`] with the reporter once the gateway is served.
pub fn health_service() -> (HealthReporter, HealthServer<impl Health>) {
    tonic_health::server::health_reporter()
}

#[cfg(test)]
mod tests {
    use super::pb::{self, command, machine_message, server_message};
    use super::*;
    use prost::Message;

    #[test]
    fn machine_message_with_a_vend_round_trips() {
        let msg = pb::MachineMessage {
            seq: 42,
            at_unix_ms: 1_700_000_000_123,
            body: Some(machine_message::Body::Vend(pb::VendEvent {
                vend_id: "6f1c2b4e-8a0d-4c1e-9b7a-3d2f1e0c9b8a".into(),
                slot: 12,
                sku: "COLA-330".into(),
                price_minor: 250,
                payment_method: pb::vend_event::PaymentMethod::App as i32,
                order_id: Some("ord_1".into()),
                result: pb::vend_event::Result::Failure as i32,
                failure_reason: Some("motor_jam".into()),
            })),
        };
        let bytes = msg.encode_to_vec();
        let back = pb::MachineMessage::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(back, msg);
        let Some(machine_message::Body::Vend(vend)) = back.body else {
            panic!("expected a vend body, got {:?}", back.body);
        };
        assert_eq!(
            vend.payment_method(),
            pb::vend_event::PaymentMethod::App,
            "enum accessor maps the wire value"
        );
        assert_eq!(vend.result(), pb::vend_event::Result::Failure);

        // proto3 `optional`: absent stays absent, distinct from an empty string.
        let bare = pb::VendEvent {
            order_id: None,
            failure_reason: Some(String::new()),
            ..pb::VendEvent::default()
        };
        let back = pb::VendEvent::decode(bare.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!(back.order_id, None);
        assert_eq!(back.failure_reason, Some(String::new()));
    }

    #[test]
    fn server_message_with_a_dispense_command_round_trips() {
        let msg = pb::ServerMessage {
            body: Some(server_message::Body::Command(pb::Command {
                command_id: "cmd_7".into(),
                kind: Some(command::Kind::Dispense(pb::Dispense {
                    order_id: "ord_1".into(),
                    slot: 3,
                    deadline_unix_ms: 1_700_000_030_000,
                })),
            })),
        };
        let back = pb::ServerMessage::decode(msg.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!(back, msg);

        // An empty command kind still round-trips as present.
        let audit = pb::ServerMessage {
            body: Some(server_message::Body::Command(pb::Command {
                command_id: "cmd_8".into(),
                kind: Some(command::Kind::RequestAudit(pb::RequestAudit {})),
            })),
        };
        let back = pb::ServerMessage::decode(audit.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!(back, audit);
    }

    #[test]
    fn contract_field_numbers_are_fixed() {
        // Field 10 of MachineMessage is Hello, 12 is VendEvent; field 12 of ServerMessage is
        // Command. A wire tag is (number << 3) | 2 for a length-delimited field.
        let hello = pb::MachineMessage {
            seq: 0,
            at_unix_ms: 0,
            body: Some(machine_message::Body::Hello(pb::Hello::default())),
        };
        assert_eq!(hello.encode_to_vec(), vec![(10 << 3) | 2, 0]);
        let cmd = pb::ServerMessage {
            body: Some(server_message::Body::Command(pb::Command::default())),
        };
        assert_eq!(cmd.encode_to_vec(), vec![(12 << 3) | 2, 0]);
    }

    #[test]
    fn descriptor_set_describes_the_streaming_session() {
        let fds =
            prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("descriptor set");
        let file = fds
            .file
            .iter()
            .find(|f| f.package() == "emporium.vending.v1")
            .expect("the vending file");
        assert_eq!(file.name(), "emporium/vending/v1/vending.proto");
        let service = file
            .service
            .iter()
            .find(|s| format!("{}.{}", file.package(), s.name()) == MACHINE_GATEWAY_SERVICE)
            .expect("MachineGateway service");
        let session = service
            .method
            .iter()
            .find(|m| m.name() == "Session")
            .expect("Session method");
        assert!(session.client_streaming(), "Session is client-streaming");
        assert!(session.server_streaming(), "Session is server-streaming");
        assert_eq!(session.input_type(), ".emporium.vending.v1.MachineMessage");
        assert_eq!(session.output_type(), ".emporium.vending.v1.ServerMessage");

        // The proto3 `optional` fields are really optional (synthetic oneofs).
        let vend = file
            .message_type
            .iter()
            .find(|m| m.name() == "VendEvent")
            .expect("VendEvent");
        for name in ["order_id", "failure_reason"] {
            let field = vend.field.iter().find(|f| f.name() == name).expect(name);
            assert!(field.proto3_optional(), "{name} is proto3 optional");
        }
    }

    #[test]
    fn generated_service_name_matches_the_contract() {
        use tonic::server::NamedService;
        struct Nothing;
        #[tonic::async_trait]
        impl pb::machine_gateway_server::MachineGateway for Nothing {
            type SessionStream = futures::stream::Empty<Result<pb::ServerMessage, tonic::Status>>;
            async fn session(
                &self,
                _request: tonic::Request<tonic::Streaming<pb::MachineMessage>>,
            ) -> Result<tonic::Response<Self::SessionStream>, tonic::Status> {
                Err(tonic::Status::unimplemented("test"))
            }
        }
        assert_eq!(
            <pb::machine_gateway_server::MachineGatewayServer<Nothing> as NamedService>::NAME,
            MACHINE_GATEWAY_SERVICE
        );
    }

    #[test]
    fn reflection_and_health_services_construct() {
        reflection_service().expect("v1 reflection builds");
        reflection_service_v1alpha().expect("v1alpha reflection builds");
        let (_reporter, _server) = health_service();
    }

    #[tokio::test]
    async fn health_reports_serving_for_the_gateway_once_set() {
        use tonic_health::pb::{health_check_response::ServingStatus, HealthCheckRequest};
        let (reporter, server) = health_service();
        reporter
            .set_service_status(
                MACHINE_GATEWAY_SERVICE,
                tonic_health::ServingStatus::Serving,
            )
            .await;
        // Call the service through its trait object, as the server would.
        let svc = tonic_health::server::HealthService::from_health_reporter(reporter);
        let resp = svc
            .check(tonic::Request::new(HealthCheckRequest {
                service: MACHINE_GATEWAY_SERVICE.into(),
            }))
            .await
            .expect("check answers");
        assert_eq!(resp.into_inner().status(), ServingStatus::Serving);
        drop(server);
    }
}
