//! The ARM MPS2 AN386 board (Cortex-M4) as `qemu-system-arm -M mps2-an386`
//! emulates it: its CMSDK APB UARTs, their interrupts, and the firmware's
//! memory.
//!
//! UART0–3 are the connections ([`UartPort`], one `embedded-io` port each),
//! UART4 the log console ([`Console`]). A CMSDK UART holds one received
//! byte; the receive interrupt moves it into the port's ring of
//! [`RX_RING`] bytes, which the main loop reads through
//! [`embedded_io::Read`]. Writes go straight to the UART's one-byte
//! transmit register as long as it is free ([`embedded_io::WriteReady`]);
//! the transmit interrupt only wakes the main loop to send the next byte.
//!
//! # Sharing with interrupt handlers
//!
//! **Decision**: the rings are the only state the interrupt handlers
//! share, and they are shared through `critical-section` (on this
//! single-core part: interrupts masked for the few instructions of a push
//! or a pop), not through a `spin` lock. A spin lock taken by the main loop
//! and wanted by an interrupt handler that preempts it would spin forever:
//! the holder cannot run again until the handler returns. The broker is
//! never touched by a handler: handling a frame takes longer than a byte
//! time, and doing it in an interrupt would hold up the other UARTs'
//! receive interrupts. Its memory (routing table, frame buffers, output
//! queues) is a static `spin::Mutex` that the main loop takes once and
//! keeps (`MutexGuard::leak`, see `main.rs`): safe `&'static mut` access
//! to a static, without `static mut` and without masking interrupts for
//! the length of a broker call. That lock is never contended, so it never
//! spins.
//!
//! When a ring is full the receive interrupt is switched off and the byte
//! left in the UART: the sender then waits (QEMU holds further bytes in its
//! socket; on hardware, RTS/CTS would), and reading the ring switches it
//! back on. Nothing received is ever dropped by the driver.

#![allow(unsafe_code)]

use core::cell::RefCell;
use core::convert::Infallible;
use core::fmt::Write as _;
use core::sync::atomic::{AtomicBool, Ordering};

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;
use cortex_m_rt::{exception, ExceptionFrame};
use critical_section::Mutex;
use heapless::Deque;

use crate::{CONNECTIONS, RX_RING};

/// Register offsets and bits of a CMSDK APB UART.
mod reg {
    pub const DATA: usize = 0x00;
    pub const STATE: usize = 0x04;
    pub const CTRL: usize = 0x08;
    pub const INTSTATUS: usize = 0x0c;
    pub const BAUDDIV: usize = 0x10;

    pub const STATE_TX_FULL: u32 = 1 << 0;
    pub const STATE_RX_FULL: u32 = 1 << 1;

    pub const CTRL_TX_EN: u32 = 1 << 0;
    pub const CTRL_RX_EN: u32 = 1 << 1;
    pub const CTRL_TX_INTEN: u32 = 1 << 2;
    pub const CTRL_RX_INTEN: u32 = 1 << 3;

    pub const INT_TX: u32 = 1 << 0;
    pub const INT_RX: u32 = 1 << 1;

    /// The smallest divider the UART accepts (QEMU ignores the resulting
    /// rate: its serial ports are sockets).
    pub const BAUDDIV_MIN: u32 = 16;
}

/// One CMSDK APB UART. The only values are the board's ([`UARTS`],
/// [`CONSOLE`]), so every register access below is to a real register.
#[derive(Debug, Clone, Copy)]
struct Uart {
    base: usize,
}

/// UART0–3: the connections.
const UARTS: [Uart; CONNECTIONS] = [
    Uart { base: 0x4000_4000 },
    Uart { base: 0x4000_5000 },
    Uart { base: 0x4000_6000 },
    Uart { base: 0x4000_7000 },
];

/// UART4: the log console.
const CONSOLE: Uart = Uart { base: 0x4000_9000 };

/// The receive and transmit interrupts of UART0–3 (AN386; UART4's are not
/// used).
const UART_IRQS: [(u16, u16); CONNECTIONS] = [(0, 1), (2, 3), (4, 5), (18, 19)];

impl Uart {
    fn read(self, offset: usize) -> u32 {
        // SAFETY: `base + offset` is a register of one of the board's UARTs
        // (see `Uart`): aligned, always mapped, and no Rust object lives
        // there. Reading DATA has a side effect (it takes the byte), which
        // is what the callers want.
        unsafe { core::ptr::read_volatile((self.base + offset) as *const u32) }
    }

    fn write(self, offset: usize, value: u32) {
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile((self.base + offset) as *mut u32, value) }
    }

    fn enable(self, ctrl: u32) {
        self.write(reg::BAUDDIV, reg::BAUDDIV_MIN);
        self.write(reg::CTRL, ctrl);
    }

    fn tx_full(self) -> bool {
        self.read(reg::STATE) & reg::STATE_TX_FULL != 0
    }

    fn rx_full(self) -> bool {
        self.read(reg::STATE) & reg::STATE_RX_FULL != 0
    }

    fn set_rx_interrupt(self, on: bool) {
        let ctrl = self.read(reg::CTRL);
        let ctrl = if on {
            ctrl | reg::CTRL_RX_INTEN
        } else {
            ctrl & !reg::CTRL_RX_INTEN
        };
        self.write(reg::CTRL, ctrl);
    }

    /// Moves received bytes from the UART into `rx` while it has room;
    /// pauses reception (receive interrupt off, byte left in the UART)
    /// when it has none.
    fn drain_into(self, rx: &mut Rx) {
        while self.rx_full() {
            if rx.ring.is_full() {
                self.set_rx_interrupt(false);
                rx.paused = true;
                return;
            }
            // Only the low byte of DATA holds data.
            let _ = rx.ring.push_back(self.read(reg::DATA) as u8);
        }
    }

    /// Writes `bytes` while the transmit register is free; returns how
    /// many it took.
    fn send(self, bytes: &[u8]) -> usize {
        let mut n = 0;
        for &b in bytes {
            if self.tx_full() {
                break;
            }
            self.write(reg::DATA, u32::from(b));
            n += 1;
        }
        n
    }
}

/// A port's receive side, shared with its interrupt handler.
struct Rx {
    ring: Deque<u8, RX_RING>,
    /// The ring was full: the receive interrupt is off.
    paused: bool,
}

static RX: [Mutex<RefCell<Rx>>; CONNECTIONS] = [const {
    Mutex::new(RefCell::new(Rx {
        ring: Deque::new(),
        paused: false,
    }))
}; CONNECTIONS];

/// The receive interrupt of port `index`.
fn on_receive(index: usize) {
    let (Some(uart), Some(rx)) = (UARTS.get(index), RX.get(index)) else {
        return;
    };
    // Clear first: a byte arriving after this raises it again.
    uart.write(reg::INTSTATUS, reg::INT_RX);
    critical_section::with(|cs| uart.drain_into(&mut rx.borrow_ref_mut(cs)));
}

/// The transmit interrupt of port `index`: the main loop, woken by it,
/// sends the next byte.
fn on_transmit(index: usize) {
    if let Some(uart) = UARTS.get(index) {
        uart.write(reg::INTSTATUS, reg::INT_TX);
    }
}

/// The interrupt handler for every external interrupt: dispatches the
/// UARTs' by number, masks any other (none is enabled).
#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    // Negative: a core exception (NMI and the like); nothing to do, and a
    // handler that may preempt critical sections must not touch the rings.
    let Ok(irq) = u16::try_from(irqn) else {
        return;
    };
    for (index, (rx, tx)) in UART_IRQS.iter().enumerate() {
        if irq == *rx {
            return on_receive(index);
        }
        if irq == *tx {
            return on_transmit(index);
        }
    }
    NVIC::mask(Irq(irq));
}

/// An external interrupt number of this board.
#[derive(Debug, Clone, Copy)]
struct Irq(u16);

// SAFETY: `Irq` values are interrupt numbers the NVIC has (the UARTs', or
// one the hardware just raised).
unsafe impl InterruptNumber for Irq {
    fn number(self) -> u16 {
        self.0
    }
}

/// A fault ends the firmware: its registers go to the console, then the
/// core halts (a test sees the firmware stop answering, and the log says
/// why).
#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    let _ = writeln!(
        Console { uart: CONSOLE },
        "nfy-baremetal: hard fault: pc {:#010x}, lr {:#010x}",
        frame.pc(),
        frame.lr()
    );
    halt()
}

/// A panic (a bug: input never panics) ends the firmware like a fault.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = writeln!(Console { uart: CONSOLE }, "nfy-baremetal: panic: {info}");
    halt()
}

fn halt() -> ! {
    cortex_m::interrupt::disable();
    loop {
        cortex_m::asm::wfi();
    }
}

/// One connection's UART as an `embedded-io` port.
#[derive(Debug)]
pub struct UartPort {
    index: usize,
    uart: Uart,
}

impl UartPort {
    /// Moves received bytes into `buf`; returns how many. Resumes a paused
    /// reception once the ring has room again.
    fn take(&mut self, buf: &mut [u8]) -> usize {
        let Some(rx) = RX.get(self.index) else {
            return 0;
        };
        critical_section::with(|cs| {
            let mut rx = rx.borrow_ref_mut(cs);
            let mut n = 0;
            for slot in buf.iter_mut() {
                let Some(b) = rx.ring.pop_front() else { break };
                *slot = b;
                n += 1;
            }
            if rx.paused && !rx.ring.is_full() {
                rx.paused = false;
                // Interrupt on first, then take what already waits: a byte
                // arriving in between raises the interrupt (handled after
                // this critical section, finding nothing or the next byte).
                self.uart.set_rx_interrupt(true);
                self.uart.drain_into(&mut rx);
            }
            n
        })
    }
}

impl embedded_io::ErrorType for UartPort {
    type Error = Infallible;
}

impl embedded_io::ReadReady for UartPort {
    fn read_ready(&mut self) -> Result<bool, Infallible> {
        let Some(rx) = RX.get(self.index) else {
            return Ok(false);
        };
        Ok(critical_section::with(|cs| {
            !rx.borrow_ref(cs).ring.is_empty()
        }))
    }
}

impl embedded_io::Read for UartPort {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        loop {
            let n = self.take(buf);
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // The receive interrupt wakes us.
            let index = self.index;
            sleep_unless(|| {
                RX.get(index).is_none_or(|rx| {
                    critical_section::with(|cs| !rx.borrow_ref(cs).ring.is_empty())
                })
            });
        }
    }
}

impl embedded_io::WriteReady for UartPort {
    fn write_ready(&mut self) -> Result<bool, Infallible> {
        Ok(!self.uart.tx_full())
    }
}

impl embedded_io::Write for UartPort {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        loop {
            let n = self.uart.send(buf);
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            core::hint::spin_loop();
        }
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        while self.uart.tx_full() {
            core::hint::spin_loop();
        }
        Ok(())
    }
}

/// The log console (UART4): blocking writes, nothing received.
#[derive(Debug)]
pub struct Console {
    uart: Uart,
}

impl embedded_io::ErrorType for Console {
    type Error = Infallible;
}

impl embedded_io::Write for Console {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        let mut n = 0;
        while n == 0 && !buf.is_empty() {
            n = self.uart.send(buf);
        }
        Ok(n)
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        while self.uart.tx_full() {
            core::hint::spin_loop();
        }
        Ok(())
    }
}

impl core::fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let _ = embedded_io::Write::write_all(self, s.as_bytes());
        Ok(())
    }
}

/// The board's devices, handed out once.
#[derive(Debug)]
pub struct Board {
    /// UART0–3, the connections.
    pub ports: [UartPort; CONNECTIONS],
    /// UART4, the log.
    pub console: Console,
}

static TAKEN: AtomicBool = AtomicBool::new(false);

impl Board {
    /// Sets up the UARTs and their interrupts; `None` when already taken.
    pub fn take() -> Option<Board> {
        if TAKEN.swap(true, Ordering::AcqRel) {
            return None;
        }
        CONSOLE.enable(reg::CTRL_TX_EN);
        for (uart, (rx, tx)) in UARTS.iter().zip(UART_IRQS) {
            uart.enable(
                reg::CTRL_TX_EN | reg::CTRL_RX_EN | reg::CTRL_TX_INTEN | reg::CTRL_RX_INTEN,
            );
            // SAFETY: the handlers of these interrupts (`DefaultHandler`)
            // touch only the rings, under critical sections.
            unsafe {
                NVIC::unmask(Irq(rx));
                NVIC::unmask(Irq(tx));
            }
        }
        let mut index = 0;
        Some(Board {
            ports: UARTS.map(|uart| {
                index += 1;
                UartPort {
                    index: index - 1,
                    uart,
                }
            }),
            console: Console { uart: CONSOLE },
        })
    }
}

/// Sleeps until an interrupt, unless `has_work` says there is work.
/// `has_work` runs with interrupts masked, so an interrupt that comes after
/// it cannot be missed: it is left pending, which ends the sleep (`wfi`
/// wakes for a pending interrupt even while they are masked), and its
/// handler runs once the mask is lifted.
pub fn sleep_unless(has_work: impl FnOnce() -> bool) {
    critical_section::with(|_| {
        if !has_work() {
            cortex_m::asm::wfi();
        }
    });
}

/// The stack's high-water mark in bytes, and its size: the stack is
/// painted at reset (`cortex-m-rt`'s `paint-stack`), and the deepest word
/// no longer holding the paint marks how deep it has ever been.
pub fn stack_use() -> (usize, usize) {
    extern "C" {
        static _stack_end: u32;
        static _stack_start: u32;
    }
    let bottom = core::ptr::addr_of!(_stack_end) as usize;
    let top = core::ptr::addr_of!(_stack_start) as usize;
    let mut at = bottom;
    while at < top {
        // SAFETY: [bottom, top) is the stack region the linker script
        // reserves: mapped RAM, word-aligned; reading it races nothing on
        // one core.
        if unsafe { core::ptr::read_volatile(at as *const u32) } != cortex_m_rt::STACK_PAINT_VALUE {
            break;
        }
        at += 4;
    }
    (top - at, top - bottom)
}
