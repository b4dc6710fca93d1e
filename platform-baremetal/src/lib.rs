//! # nfy-baremetal
//!
//! nfy's bare-metal profile: the `nfy-core` broker running on a Cortex-M
//! microcontroller without an operating system or an allocator, one UART
//! per connection, each carrying the documented `\0NFY` frames with JSON
//! bodies. The firmware (`src/main.rs`) is built for the ARM MPS2 AN386
//! board (Cortex-M4) that `qemu-system-arm` emulates, and tested there by
//! `cargo xtask baremetal`.
//!
//! ## Layers
//!
//! | module | holds | where it builds |
//! |---|---|---|
//! | [`outq`] | a connection's output queue of encoded frames | everywhere |
//! | [`bus`] | the broker and the ports' connections: the only user of `nfy_core::broker` | everywhere |
//! | [`service`] | the connection loop over `embedded-io` ports, flow control | everywhere |
//! | [`log`] | log line sinks | everywhere |
//! | `board` | MPS2 AN386: CMSDK UART driver, interrupts, receive rings, memory | ARM bare metal only |
//! | `main.rs` | the firmware: startup, static state, the main loop | ARM bare metal only |
//!
//! Everything above `board` is independent of the hardware and tested on
//! the host (`cargo test -p nfy-baremetal`). The firmware is tested under
//! QEMU by `tests/qemu.rs`, which `cargo xtask baremetal` runs.
//!
//! ## Capacities (the firmware's)
//!
//! [`CONNECTIONS`] ports, [`REGISTRATIONS`] registrations in total (any
//! port may hold all of them) naming at most [`IDENTIFIERS`] distinct
//! identifiers between them, frame bodies up to [`MAX_BODY`] bytes
//! (larger frames are skipped whole and logged), [`OUT_QUEUE`] bytes of
//! output queue per port, [`RX_RING`] bytes of receive buffer per UART.
//! Identifiers keep the spec's 64 bytes.
//!
//! **Decision** (what "64 registrations" guarantees): the routing table
//! is a [`CompactStorage`](nfy_core::route::CompactStorage): a
//! registration names its app ID and notification ID by index into a pool
//! of [`IDENTIFIERS`] identifiers (any valid length, up to 64 bytes, one
//! entry each), shared by every registration naming them. 64
//! registrations always fit while together they name at most 24 distinct
//! identifiers (an app ID and a notification ID spelled alike count
//! twice): for instance 4 apps each registered for the same 20
//! notification IDs (80 registrations' worth of pairs), or 8 apps and 16
//! notification IDs. A register naming a 25th identifier is refused like
//! one over the 64 slots: the broker logs "registration refused: routing
//! table full" and the client's registration does not exist (notifying it
//! owes a unicast error). An entry is freed with the last registration
//! naming it. Storing both identifiers inline instead (the core's
//! `InlineStorage`, 168 bytes a slot on this target) would take 13,344
//! bytes for 64 registrations, most of the 16 KiB target.
//!
//! The largest frame accepted is [`MAX_FRAME`] bytes (12 of header, a
//! body of [`MAX_BODY`]): a notify with three 64-byte identifiers, a
//! reference and all members takes about 300 bytes of JSON, which leaves
//! about 200 for its `parameter`.
//!
//! ## Memory map (MPS2 AN386 under QEMU; `memory.x`)
//!
//! | region | address | size | holds |
//! |---|---|---|---|
//! | FLASH | `0x0000_0000` | 64 KiB (the target is 48 KiB; the board has 4 MiB of SSRAM there) | vector table, code, read-only data, `.data`'s initial values |
//! | RAM | `0x2000_0000` | 32 KiB (the target is 16 KiB; the board has 4 MiB) | `.stack` (6.5 KiB, at the bottom: an overflow leaves RAM instead of overwriting the statics), then `.data`, `.bss` |
//!
//! The regions are larger than the targets so that an oversized firmware
//! still links and is measured: `cargo xtask baremetal` fails, naming the
//! figure and the target, when flash or RAM (stack + `.data` + `.bss`) is
//! over its target.
//!
//! `.bss` holds the service's [`FirmwareMemory`] (routing table, frame
//! buffers, output queues; all zeroes at reset, so it takes no flash and
//! is never copied through the stack) and the UARTs' receive rings. The
//! service's own state (broker, decoders' positions, queue indexes, about
//! 2.3 KiB) is on the stack of the main loop, which never returns.
//!
//! RAM, in bytes, as `cargo xtask baremetal` measures it (16,180 of the
//! 16,384 target; flash 36,476 of 49,152):
//!
//! | what | bytes |
//! |---|---|
//! | stack (reserved; high-water 5,684 to 5,768 under the QEMU tests, so about 890 spare) | 6,656 |
//! | routing table: 64 slots × 32, 24 identifiers × 76, chain lists (24 + 64) × 8 | 4,608 |
//! | frame buffers: 4 × 524 | 2,096 |
//! | output queues: 4 × 620 | 2,480 |
//! | UART receive rings: 4 × 84 | 336 |
//! | the rest (`.data`, board flags, alignment) | 4 |
//!
//! UART0–3 (`0x4000_4000`, `0x4000_5000`, `0x4000_6000`, `0x4000_7000`;
//! receive/transmit interrupts 0/1, 2/3, 4/5, 18/19) are the connections;
//! UART4 (`0x4000_9000`) is the log console. README, "The bare-metal
//! profile", has the figures too.
//!
//! ## Porting to real hardware
//!
//! 1. `memory.x`: the part's flash and RAM (keep the stack region first,
//!    sized from the high-water mark the firmware logs, with a margin).
//! 2. A driver per connection implementing `embedded_io`'s `Read`,
//!    `ReadReady`, `Write` and `WriteReady` (most HALs' blocking UARTs
//!    do); keep received bytes in an interrupt-fed buffer, as `board` does,
//!    when the UART's own FIFO is short.
//! 3. The main loop: [`service::Service::poll`] each port, and sleep when
//!    [`service::Service::has_work`] says no port has any (check it with
//!    interrupts masked, then `wfi`, so no wake-up is missed).
//! 4. The interrupt priorities do not matter to the service: only the
//!    receive buffers are shared with interrupt handlers, under
//!    `critical-section` (on a multi-core part, pick a `critical-section`
//!    implementation that covers the other cores).
//! 5. A panic or a fault writes one line to the console and halts; a part
//!    with a watchdog would reset instead.
//!
//! ## What the profile leaves out
//!
//! Remote peers and the whitelist (a board's serial lines are all local),
//! compact bodies and with them observers, status and acknowledgements
//! (see [`bus`]), and connection ends: a UART is a permanent connection,
//! its registrations last until unregistered or the board resets.

#![no_std]
#![cfg_attr(not(all(target_arch = "arm", target_os = "none")), forbid(unsafe_code))]
#![cfg_attr(all(target_arch = "arm", target_os = "none"), deny(unsafe_code))]

#[cfg(test)]
extern crate std;

#[cfg(all(target_arch = "arm", target_os = "none"))]
pub mod board;
pub mod bus;
pub mod log;
pub mod outq;
pub mod service;

/// Connections: one per UART.
pub const CONNECTIONS: usize = 4;
/// Registrations, all connections together.
pub const REGISTRATIONS: usize = 64;
/// Distinct identifiers (app IDs and notification IDs, up to 64 bytes
/// each) the registrations may name between them: the routing table's
/// identifier pool ([`nfy_core::route::CompactStorage`]).
pub const IDENTIFIERS: usize = 24;
/// The largest frame body accepted.
pub const MAX_BODY: usize = 512;
/// A frame: header and body.
pub const MAX_FRAME: usize = nfy_core::wire::HEADER_LEN + MAX_BODY;
/// Output queue per connection: the largest answer to one frame.
pub const OUT_QUEUE: usize = MAX_FRAME + bus::MAX_GROWTH;
/// Receive buffer per UART, filled by its interrupt handler.
pub const RX_RING: usize = 64;

/// The firmware's memory: routing table, frame buffers, output queues.
pub type FirmwareMemory = service::Memory<CONNECTIONS, REGISTRATIONS, MAX_FRAME, OUT_QUEUE>;
/// The firmware's service.
pub type FirmwareService<'a> = service::Service<'a, CONNECTIONS, REGISTRATIONS>;
