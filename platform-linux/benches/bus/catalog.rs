//! What the benchmark compares: the systems (the columns of the table) and
//! the workloads (its rows), with their names on the command line, in the
//! table and in `bus.json`.

/// The compared systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Sys {
    /// The minimal relay written in the bench.
    Floor,
    /// `notifysvc` and our library (one `notify` per call).
    Compact,
    /// `notifysvc` and a raw JSON-protocol client over TCP.
    Json,
    /// The same raw client over the Unix socket (diagnostic).
    RawUnix,
    /// Our library sending with `Client::batch` (one-way workloads only).
    Batch,
    /// `nats-server` and a client of its text protocol (rtt, burst, fanout).
    Nats,
    /// Our library over TCP loopback (rtt, burst): TLS's floor.
    LibTcp,
    /// Our library over TLS on loopback (issue 16: rtt, burst).
    LibTls,
}

/// Systems compared.
pub const NSYS: usize = 8;
/// Every system, in column order.
pub const SYSTEMS: [Sys; NSYS] = [
    Sys::Floor,
    Sys::Compact,
    Sys::Json,
    Sys::RawUnix,
    Sys::Batch,
    Sys::Nats,
    Sys::LibTcp,
    Sys::LibTls,
];

impl Sys {
    /// Name on the command line and in `bus.json`.
    pub fn key(self) -> &'static str {
        match self {
            Sys::Floor => "floor",
            Sys::Compact => "compact",
            Sys::Json => "json",
            Sys::RawUnix => "raw-unix",
            Sys::Batch => "batch",
            Sys::Nats => "nats",
            Sys::LibTcp => "lib-tcp",
            Sys::LibTls => "lib-tls",
        }
    }

    /// What it is, in a few words.
    pub fn label(self) -> &'static str {
        match self {
            Sys::Floor => "floor (relay)",
            Sys::Compact => "nfy compact (library, unix)",
            Sys::Json => "nfy json (raw, tcp)",
            Sys::RawUnix => "nfy json (raw, unix)",
            Sys::Batch => {
                "nfy compact batched (library, Client::batch of 32; the burst: of --burst-batch)"
            }
            Sys::Nats => "nats-server (text-protocol client written in the bench, tcp)",
            Sys::LibTcp => "nfy compact (library, tcp loopback)",
            Sys::LibTls => "nfy compact (library, TLS 1.3 on loopback, client certificate)",
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
            Sys::Nats => "nats",
            Sys::LibTcp => "lib/tcp",
            Sys::LibTls => "lib/tls",
        }
    }

    /// Whether this system runs `work`: batching only applies to the
    /// one-way workloads, NATS runs rtt, burst and fanout, and the
    /// diagnostic raw Unix client skips the burst.
    pub fn runs(self, work: Work) -> bool {
        match self {
            Sys::Floor | Sys::Compact | Sys::Json => true,
            Sys::RawUnix => work != Work::Burst,
            Sys::Batch => matches!(work, Work::Throughput | Work::Burst | Work::Fanout),
            Sys::Nats => matches!(work, Work::Rtt | Work::Burst | Work::Fanout),
            Sys::LibTcp | Sys::LibTls => matches!(work, Work::Rtt | Work::Burst),
        }
    }

    /// Whether it runs on `notifysvc`.
    pub fn is_nfy(self) -> bool {
        !matches!(self, Sys::Floor | Sys::Nats)
    }

    /// Its column (index into the per-system figures).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Work {
    /// A notifies B, B answers A.
    Rtt,
    /// rtt beside 1,000 connections holding 10,000 registrations.
    Scale,
    /// A → B one way, within the flow-control window.
    Throughput,
    /// A → B one way, no window: as fast as the sender can (issue 12).
    Burst,
    /// A broadcasts to 8 receivers, within the window.
    Fanout,
    /// Peak RSS of notifysvc.
    Memory,
}

impl Work {
    /// From its name on the command line.
    pub fn parse(s: &str) -> Option<Work> {
        Some(match s {
            "rtt" => Work::Rtt,
            "scale" => Work::Scale,
            "throughput" => Work::Throughput,
            "burst" => Work::Burst,
            "fanout" => Work::Fanout,
            "memory" => Work::Memory,
            _ => return None,
        })
    }
}
