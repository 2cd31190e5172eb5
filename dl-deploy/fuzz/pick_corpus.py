#!/usr/bin/env python3
"""Picks a corpus under a byte budget from a libFuzzer merge control file.

`cargo fuzz cmin` keeps every file that adds an edge, however large; for the `tflite`
target that is ~800 files and ~3.8 MB, mostly mutated copies of the two models. This
keeps the seeds (`seed-*` without `-cut-`), then adds files greedily by new edges per
byte until the budget, and prints how many edges the pick keeps.

    ./target/.../release/tflite -merge=1 -use_counters=0 \\
        -merge_control_file=mcf.txt EMPTY_DIR FULL_CORPUS_DIR
    python3 pick_corpus.py mcf.txt 390000 corpus/tflite   # copies the pick there
"""
import os
import shutil
import sys

control, budget, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lines = open(control).read().split("\n")
n = int(lines[0])
files = lines[2 : 2 + n]
cov = {}
for line in lines[2 + n :]:
    p = line.split()
    if p and p[0] == "COV":
        cov[int(p[1])] = set(map(int, p[2:]))
size = {i: os.path.getsize(f) for i, f in enumerate(files)}
every = set().union(*cov.values())
chosen = [i for i, f in enumerate(files)
          if os.path.basename(f).startswith("seed-") and "-cut-" not in f]
got = set().union(*(cov.get(i, set()) for i in chosen))
used = sum(size[i] for i in chosen)
while True:
    best, score = None, 0.0
    for i in range(n):
        if i in chosen or used + size[i] > budget:
            continue
        s = len(cov.get(i, set()) - got) / (size[i] + 64)
        if s > score:
            best, score = i, s
    if best is None:
        break
    chosen.append(best)
    used += size[best]
    got |= cov.get(best, set())
os.makedirs(out, exist_ok=True)
for i in chosen:
    shutil.copy(files[i], os.path.join(out, os.path.basename(files[i])))
print(f"{len(chosen)} of {n} files, {used} bytes, {len(got)} of {len(every)} edges")
