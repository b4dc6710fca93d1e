//! The bare-metal firmware: the nfy broker on an MPS2 AN386 board, UART0–3
//! as its connections, UART4 as its log.
//!
//! Built for `thumbv7em-none-eabihf` by `cargo xtask baremetal`, which then
//! runs it under `qemu-system-arm -M mps2-an386` and tests it. Built for
//! the host, it is a stub that says so.

#![cfg_attr(all(target_arch = "arm", target_os = "none"), no_std, no_main)]
#![forbid(unsafe_code)]

#[cfg(all(target_arch = "arm", target_os = "none"))]
mod firmware {
    use cortex_m_rt::entry;
    use nfy_baremetal::board::{self, Board};
    use nfy_baremetal::log::{Log, PortLog};
    use nfy_baremetal::{FirmwareMemory, FirmwareService, CONNECTIONS, IDENTIFIERS, REGISTRATIONS};

    /// The service's memory (routing table, frame buffers, output queues):
    /// a static, so the linker accounts for it, all zeroes, so it takes no
    /// flash and is built in place. The main loop takes it once, for good;
    /// interrupt handlers never touch it.
    static MEMORY: spin::Mutex<FirmwareMemory> = spin::Mutex::new(FirmwareMemory::new());

    #[entry]
    fn main() -> ! {
        let Some(Board { mut ports, console }) = Board::take() else {
            panic!("board taken twice");
        };
        let mut log = PortLog(console);
        let Some(memory) = MEMORY.try_lock() else {
            panic!("memory taken twice");
        };
        let mut service = FirmwareService::new(spin::MutexGuard::leak(memory));
        log.line(format_args!(
            "nfy-baremetal: ready: {CONNECTIONS} connections (UART0-{}), {REGISTRATIONS} \
             registrations over up to {IDENTIFIERS} identifiers, bodies up to {} bytes",
            CONNECTIONS - 1,
            service.max_body()
        ));
        let mut stack_reported = 0;
        loop {
            let mut moved = false;
            for (index, port) in ports.iter_mut().enumerate() {
                let Ok(m) = service.poll(index, port, &mut log);
                moved |= m;
            }
            if moved {
                continue;
            }
            let (used, size) = board::stack_use();
            if used > stack_reported {
                stack_reported = used;
                log.line(format_args!(
                    "nfy-baremetal: stack high-water {used} of {size} bytes"
                ));
            }
            board::sleep_unless(|| {
                ports
                    .iter_mut()
                    .enumerate()
                    .any(|(index, port)| matches!(service.has_work(index, port), Ok(true)))
            });
        }
    }
}

#[cfg(not(all(target_arch = "arm", target_os = "none")))]
fn main() {
    eprintln!(
        "nfy-baremetal is firmware for an ARM Cortex-M board (MPS2 AN386): \
         build it and run it under QEMU with `cargo xtask baremetal`"
    );
    std::process::exit(2);
}
