//! Compiles proto/*.proto with protox (pure Rust), so a fresh machine needs
//! no system protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/raftpb.proto", "proto/client.proto"];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    let mut config = prost_build::Config::new();
    // Payloads travel as `Bytes` slices of receive buffers, never copied.
    config.bytes(["."]);
    // Keep etcd's enum value names (MsgHup, ConfChangeTransitionAuto, ...).
    config.retain_enum_prefix();
    // Only MsgSnap carries a snapshot; boxing it halves `Message`, which the
    // core moves by value through step, send, Ready and delivery.
    config.boxed(".raftpb.Message.snapshot");
    config.compile_fds(fds)?;
    Ok(())
}
