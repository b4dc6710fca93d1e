//! What the benchmark compares: the systems (the columns of the table) and
//! the workloads (its rows), with their names on the command line, in the
//! table and in `bus.json`.
/// The compared systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Sys {
    Floor,
    Compact,
    Json,
    RawUnix,
    /// Our library sending with `Client::batch` (one-way workloads only).
    Batch,
}

/// Systems compared.
pub const NSYS: usize = 5;
pub const SYSTEMS: [Sys; NSYS] = [
    Sys::Floor,
    Sys::Compact,
    Sys::Json,
    Sys::RawUnix,
    Sys::Batch,
];

impl Sys {
    pub fn key(self) -> &'static str {
        match self {
            Sys::Floor => "floor",
            Sys::Compact => "compact",
            Sys::Json => "json",
            Sys::RawUnix => "raw-unix",
            Sys::Batch => "batch",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Sys::Floor => "floor (relay)",
            Sys::Compact => "nfy compact (library, unix)",
            Sys::Json => "nfy json (raw, tcp)",
            Sys::RawUnix => "nfy json (raw, unix)",
            Sys::Batch => "nfy compact batched (library, Client::batch of 32, unix)",
        }
    }

    /// Column heading of the table.
    pub fn column(self) -> &'static str {
        match self {
            Sys::Floor => "floor",
            Sys::Compact => "nfy compact",
            Sys::Json => "nfy json/tcp",
            Sys::RawUnix => "json/unix",
            Sys::Batch => "nfy batch",
        }
    }

    /// Whether this system runs `work` (batching only applies to the
    /// one-way workloads).
    pub fn runs(self, work: Work) -> bool {
        self != Sys::Batch || matches!(work, Work::Throughput | Work::Fanout)
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// The workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Work {
    Rtt,
    Scale,
    Throughput,
    Fanout,
    Memory,
}

impl Work {
    pub fn parse(s: &str) -> Option<Work> {
        Some(match s {
            "rtt" => Work::Rtt,
            "scale" => Work::Scale,
            "throughput" => Work::Throughput,
            "fanout" => Work::Fanout,
            "memory" => Work::Memory,
            _ => return None,
        })
    }
}
