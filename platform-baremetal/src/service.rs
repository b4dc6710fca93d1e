//! The connection loop, independent of any hardware: bytes from each port
//! through a [`FrameDecoder`] to the broker ([`Bus`]), and each port's
//! [`OutQueue`] back out to the port.
//!
//! A port is anything with `embedded-io`'s [`Read`], [`ReadReady`],
//! [`Write`] and [`WriteReady`] ([`Port`]): the board's UART driver here, a
//! HAL's UART on real hardware, an in-memory pipe in the tests. The loop
//! never blocks: it reads only what [`ReadReady`] says is there and writes
//! only when [`WriteReady`] says the port takes bytes, so one slow port
//! never holds up another.
//!
//! # Flow control
//!
//! **Decision** (spec 6, flow control): a frame is handled only when every
//! port's queue has room for the largest frame the broker may send in
//! answer (the frame plus [`MAX_GROWTH`]); otherwise input stays in
//! the port (in its driver's buffer, then in the UART, whose sender waits)
//! until the queues drain. A queue therefore never overflows and no
//! accepted notification is dropped. The price: a receiver that stops
//! reading holds up every sender. A UART without hardware flow control
//! always drains at its baud rate, so this only happens on ports that can
//! stall (with RTS/CTS, or QEMU's socket with a peer that stops reading);
//! the Linux profile's stall timeout has no equivalent here (no clock).
//!
//! # Memory
//!
//! Everything sized by a capacity (routing table, frame buffers, output
//! queues) is in one [`Memory`], whose [`Memory::new`] is `const` and all
//! zeroes: the firmware keeps it in a static (`.bss`, no flash, no copy
//! through the stack) and lends it to [`Service::new`]. What the
//! [`Service`] itself holds is small.
//!
//! Fairness: each [`Service::poll`] reads at most one chunk of
//! [`CHUNK`] bytes from its port, so a busy port cannot starve the
//! others.

use embedded_io::{Read, ReadReady, Write, WriteReady};
use nfy_core::wire::{Decoded, FrameDecoder, HEADER_LEN};

use crate::bus::{Bus, Table, MAX_GROWTH};
use crate::log::Log;
use crate::outq::OutQueue;

/// Bytes read from a port at once.
pub const CHUNK: usize = 32;

/// A connection's transport, as the service drives it.
pub trait Port: Read + ReadReady + Write + WriteReady {}

impl<T: Read + ReadReady + Write + WriteReady> Port for T {}

/// The memory of a [`Service`] with `CONNS` ports, `REGS` registrations (a
/// power of two), frames up to `FRAME` bytes (header included: bodies up
/// to `FRAME - 12`) and `OUT` bytes of output queue per port (at least
/// `FRAME +` [`MAX_GROWTH`]; more lets a port's output run ahead of its
/// UART).
pub struct Memory<const CONNS: usize, const REGS: usize, const FRAME: usize, const OUT: usize> {
    table: Table<REGS>,
    frames: [[u8; FRAME]; CONNS],
    queues: [[u8; OUT]; CONNS],
}

impl<const CONNS: usize, const REGS: usize, const FRAME: usize, const OUT: usize> Default
    for Memory<CONNS, REGS, FRAME, OUT>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<const CONNS: usize, const REGS: usize, const FRAME: usize, const OUT: usize>
    Memory<CONNS, REGS, FRAME, OUT>
{
    const CHECK: () = {
        assert!(FRAME > HEADER_LEN, "FRAME must leave room for a body");
        assert!(
            OUT >= FRAME + MAX_GROWTH,
            "OUT must hold the largest frame the broker may send"
        );
    };

    /// Fresh memory: all zeroes.
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CHECK;
        Memory {
            table: Table::new(),
            frames: [[0; FRAME]; CONNS],
            queues: [[0; OUT]; CONNS],
        }
    }
}

/// One port's input side.
struct Input<'a> {
    decoder: FrameDecoder<&'a mut [u8]>,
    /// Read from the port, not yet fed to the decoder.
    chunk: [u8; CHUNK],
    start: usize,
    end: usize,
}

impl<'a> Input<'a> {
    fn new(buf: &'a mut [u8]) -> Self {
        Input {
            decoder: FrameDecoder::new(buf),
            chunk: [0; CHUNK],
            start: 0,
            end: 0,
        }
    }

    fn pending(&self) -> bool {
        self.start < self.end
    }
}

/// The service: the broker, and per port a frame decoder and an output
/// queue, in a [`Memory`] it borrows.
pub struct Service<'a, const CONNS: usize, const REGS: usize> {
    bus: Bus<'a, CONNS, REGS>,
    inputs: [Input<'a>; CONNS],
    queues: [OutQueue<'a>; CONNS],
    /// The largest frame the broker may send in answer to one frame.
    max_answer: usize,
}

impl<'a, const CONNS: usize, const REGS: usize> Service<'a, CONNS, REGS> {
    /// A service in `memory` (fresh) with every port connected and nothing
    /// queued.
    // Not inlined: its temporaries then leave the stack once it returns
    // instead of staying in the caller's frame for good (the firmware's
    // main loop never returns).
    #[inline(never)]
    pub fn new<const FRAME: usize, const OUT: usize>(
        memory: &'a mut Memory<CONNS, REGS, FRAME, OUT>,
    ) -> Self {
        let Memory {
            table,
            frames,
            queues,
        } = memory;
        Service {
            bus: Bus::new(table),
            inputs: frames.each_mut().map(|f| Input::new(f)),
            queues: queues.each_mut().map(|q| OutQueue::new(q)),
            max_answer: FRAME + MAX_GROWTH,
        }
    }

    /// The largest frame body accepted; larger frames are skipped whole.
    pub fn max_body(&self) -> usize {
        self.max_answer - MAX_GROWTH - HEADER_LEN
    }

    /// The broker and the connections.
    pub fn bus(&self) -> &Bus<'a, CONNS, REGS> {
        &self.bus
    }

    /// Bytes queued for port `index`.
    pub fn queued(&self, index: usize) -> usize {
        self.queues.get(index).map_or(0, OutQueue::len)
    }

    /// Whether every queue has room for the largest answer to one frame.
    fn admits(queues: &[OutQueue<'_>; CONNS], max_answer: usize) -> bool {
        queues.iter().all(|q| q.free() >= max_answer)
    }

    /// One round for port `index`: writes what the port takes of its
    /// queue, then handles what it has received (at most one new chunk).
    /// Returns whether any byte moved. Errors are the port's own.
    // Not inlined, for the same reason as `new`.
    #[inline(never)]
    pub fn poll<P: Port>(
        &mut self,
        index: usize,
        port: &mut P,
        log: &mut impl Log,
    ) -> Result<bool, P::Error> {
        let Service {
            bus,
            inputs,
            queues,
            max_answer,
        } = self;
        let mut moved = false;
        if let Some(queue) = queues.get_mut(index) {
            while !queue.is_empty() && port.write_ready()? {
                let n = port.write(queue.queued())?;
                if n == 0 {
                    break;
                }
                queue.consume(n);
                moved = true;
            }
        }
        let Some(input) = inputs.get_mut(index) else {
            return Ok(moved);
        };
        let mut read = false;
        while Self::admits(queues, *max_answer) {
            if !input.pending() {
                if read || !port.read_ready()? {
                    break;
                }
                let n = port.read(&mut input.chunk)?;
                read = true;
                input.start = 0;
                input.end = n.min(CHUNK);
                moved |= n > 0;
                continue;
            }
            let rest = input.chunk.get(input.start..input.end).unwrap_or_default();
            let (used, decoded) = input.decoder.feed(rest);
            input.start += used;
            match decoded {
                Some(Decoded::Frame(frame)) => bus.handle(index, frame, queues, log),
                Some(Decoded::Skipped(skipped)) => {
                    log.line(format_args!("port {index}: {skipped}"))
                }
                None if used == 0 => break,
                None => {}
            }
        }
        Ok(moved)
    }

    /// Whether [`Service::poll`] would move a byte for port `index`: its
    /// queue has bytes and the port takes them, or it has input and the
    /// queues have room. A board sleeps when no port has work.
    pub fn has_work<P: Port>(&self, index: usize, port: &mut P) -> Result<bool, P::Error> {
        if self.queues.get(index).is_some_and(|q| !q.is_empty()) && port.write_ready()? {
            return Ok(true);
        }
        if !Self::admits(&self.queues, self.max_answer) {
            return Ok(false);
        }
        Ok(self.inputs.get(index).is_some_and(Input::pending) || port.read_ready()?)
    }
}
