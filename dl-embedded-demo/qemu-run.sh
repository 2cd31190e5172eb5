#!/usr/bin/env bash
# Cargo runner: `qemu-run.sh <QEMU machine arguments> <ELF>` runs a firmware ELF under
# qemu-system-arm with semihosting and instruction counting (-icount shift=0: one
# instruction per nanosecond of virtual time), decodes its defmt log with defmt-print,
# and exits with QEMU's status (the firmware's semihosting exit code). The machine
# arguments come from .cargo/config.toml, one set per target. `cargo xtask qemu` runs
# the same command, plus the golden-log and budget checks.
set -euo pipefail
if [ "$#" -lt 2 ]; then
    echo "usage: $0 -machine <machine> [-cpu <cpu>] <elf>" >&2
    exit 2
fi
elf="${@: -1}"
machine=("${@:1:$#-1}")
qemu-system-arm "${machine[@]}" -nographic -monitor none \
    -serial none -icount shift=0 \
    -semihosting-config enable=on,target=native -kernel "$elf" \
    | defmt-print --log-format '{L} {s}' -e "$elf"
