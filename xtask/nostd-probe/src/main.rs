//! A firmware-like program over nfy-core, for measuring code size.
//!
//! It does what a terminal's service loop does with the core: parse a
//! whitelist, run a broker, feed received bytes to a frame decoder, hand
//! frames to the broker, and encode what the broker sends. Inputs go
//! through `black_box`, so the optimiser keeps all of that code.
//! `cargo xtask nostd` builds it for `thumbv7em-none-eabihf` (opt-level
//! `s`, LTO) and reports the sizes of its sections.

#![no_std]
#![no_main]

use core::hint::black_box;
use core::panic::PanicInfo;

use nfy_core::broker::{Broker, ConnId, Limits, Outbox, PeerKind, QueueFull};
use nfy_core::msg::{self, Encoding, Message};
use nfy_core::whitelist::Whitelist;
use nfy_core::wire::{self, Decoded, FrameDecoder};
use nfy_core::{AppId, NotificationId};

/// A whitelist as a terminal's notify.cfg would hold it.
static CONFIG: &[u8] = b"in pos payment payment.*\nout payment \\* status.*\ninterface eth0\n";

/// Received bytes: garbage, then a register frame (spec 5.2's example).
static INPUT: &[u8] = b"xx\0NFY\0\0\0\x45\0\0\0\0\
{\"notification\":\"test\",\"priority\":1,\"to\":\"xyz\",\"type\":\"register\"}";

/// Encodes what the broker sends into one frame buffer.
struct Sink {
    buf: [u8; 1024],
    sent: usize,
}

impl Outbox for Sink {
    fn send(
        &mut self,
        _conn: ConnId,
        encoding: Encoding,
        msg: &Message<'_>,
    ) -> Result<(), QueueFull> {
        match wire::encode_frame(&mut self.buf, encoding.msg_id(), |body| {
            msg::encode(msg, encoding, body)
        }) {
            Ok(n) => {
                self.sent += n;
                Ok(())
            }
            Err(_) => Err(QueueFull),
        }
    }
}

/// The entry point.
#[no_mangle]
pub extern "C" fn _start() -> ! {
    let whitelist = Whitelist::<16, 4>::parse(black_box(CONFIG)).unwrap_or_default();
    let limits = Limits {
        max_registrations_per_connection: 32,
        max_remote_registrations: 256,
        ..Limits::default()
    };
    let mut broker: Broker<8, 64, 16, 4> = Broker::new(whitelist, limits);
    let mut out = Sink {
        buf: [0; 1024],
        sent: 0,
    };
    let mut decoder = FrameDecoder::new([0u8; 1024]);
    black_box(AppId::new(black_box("pos")).is_ok());
    black_box(NotificationId::new(black_box("payment.start")).is_ok());
    if let Ok(conn) = broker.connect(black_box(PeerKind::Local)) {
        let mut input = black_box(INPUT);
        while !input.is_empty() {
            let (used, decoded) = decoder.feed(input);
            if let Some(Decoded::Frame(frame)) = decoded {
                broker.handle_frame(conn, frame, &mut out);
            }
            if used == 0 {
                break;
            }
            input = input.get(used..).unwrap_or_default();
        }
        broker.disconnect(conn, &mut out);
    }
    black_box(broker.status());
    black_box(out.sent);
    loop {
        core::hint::spin_loop();
    }
}

#[panic_handler]
fn panic(_: &PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}
