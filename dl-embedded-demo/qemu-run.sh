#!/usr/bin/env bash
# Cargo runner: runs a firmware ELF under QEMU's mps2-an386 (Cortex-M4F) with
# semihosting, decodes its defmt log with defmt-print, and exits with QEMU's status
# (the firmware's semihosting exit code). `cargo xtask qemu` does the same, plus the
# golden-log and budget checks.
set -euo pipefail
elf="$1"
qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic -monitor none \
    -serial none -icount shift=0 \
    -semihosting-config enable=on,target=native -kernel "$elf" \
    | defmt-print --log-format '{L} {s}' -e "$elf"
