"""Writes the CIFAR-10 sample that tests/cifar_knn.rs runs on, and its reference.

The only real CIFAR-10 images reachable from the package registries this project
uses are the 20 test images that foolbox ships as PNG files (foolbox 3.3.4 on PyPI,
MIT licence, `foolbox/data/cifar10_{ii}_{label}.png`). This script decodes them
(8-bit RGB PNG, decoded here with zlib so no imaging library is needed) and writes
them in CIFAR-10's own binary batch format (one label byte, then the 1024 red,
1024 green and 1024 blue bytes, row-major), so the test exercises our reader:

  data_batch_1.bin .. data_batch_5.bin   images 0-9, two per batch
  test_batch.bin                          images 10-19

Then it runs scikit-learn's brute-force 1-NN with the L1 (manhattan) distance, as
the full test does on all of CIFAR-10, and writes reference.txt: for every test
image its predicted label and all 10 training images ordered by distance; and
pixels.txt, a few pixel values read from the PNG files, to check the reader's layout.

Usage:
  pip download --no-deps foolbox==3.3.4 && unzip -o foolbox-3.3.4-py3-none-any.whl 'foolbox/data/*'
  python3 make_sample.py foolbox/data
"""

import hashlib
import os
import struct
import sys
import zlib

import numpy as np
import sklearn
from sklearn.neighbors import KNeighborsClassifier

HERE = os.path.dirname(os.path.abspath(__file__))
N_TRAIN, N_TEST, PER_BATCH = 10, 10, 2


def decode_png(path):
    """An 8-bit RGB, non-interlaced PNG as a (32, 32, 3) uint8 array."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    width, height, depth, color, _, _, interlace = header
    assert (depth, color, interlace) == (8, 2, 0), (path, header)
    raw = zlib.decompress(idat)
    bpp, stride = 3, width * 3
    rows, prev, off = [], bytearray(stride), 0
    for _ in range(height):
        ftype, line = raw[off], bytearray(raw[off + 1 : off + 1 + stride])
        off += 1 + stride
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
            else:
                assert ftype == 0, (path, ftype)
        rows.append(bytes(line))
        prev = line
    return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(height, width, 3)


def main(src):
    files = sorted(f for f in os.listdir(src) if f.startswith("cifar10_"))
    assert len(files) == N_TRAIN + N_TEST, files
    images, labels = [], []
    for i, name in enumerate(files):
        _, index, label = os.path.splitext(name)[0].split("_")
        assert int(index) == i, name
        img = decode_png(os.path.join(src, name))
        images.append(img.transpose(2, 0, 1).reshape(-1))  # planar R, G, B
        labels.append(int(label))
    x, y = np.stack(images), np.array(labels)

    def write(name, rows):
        with open(os.path.join(HERE, name), "wb") as f:
            for r in rows:
                f.write(bytes([y[r]]) + x[r].tobytes())

    for b in range(5):
        write(f"data_batch_{b + 1}.bin", range(b * PER_BATCH, (b + 1) * PER_BATCH))
    write("test_batch.bin", range(N_TRAIN, N_TRAIN + N_TEST))

    xtr, ytr = x[:N_TRAIN].astype(np.float64), y[:N_TRAIN]
    xte, yte = x[N_TRAIN:].astype(np.float64), y[N_TRAIN:]
    knn = KNeighborsClassifier(n_neighbors=1, metric="manhattan", algorithm="brute")
    pred = knn.fit(xtr, ytr).predict(xte)
    dist, idx = knn.kneighbors(xte, n_neighbors=N_TRAIN)
    lines = [
        f"# scikit-learn {sklearn.__version__} KNeighborsClassifier(n_neighbors=1, "
        "metric='manhattan', algorithm='brute') on this sample (make_sample.py)",
        f"# accuracy {np.mean(pred == yte):.2f}",
        "# test_index true predicted | training indices by L1 distance (index:distance)",
    ]
    for t in range(N_TEST):
        pairs = " ".join(f"{i}:{int(d)}" for i, d in zip(idx[t], dist[t]))
        lines.append(f"{t} {yte[t]} {pred[t]} | {pairs}")
    open(os.path.join(HERE, "reference.txt"), "w").write("\n".join(lines) + "\n")

    # A few pixels straight from the decoded PNGs (height, width, channel), so the
    # test checks that the reader puts channel c, row r, column k at c*1024 + r*32 + k.
    px = ["# set index channel row column value (from the PNG files)"]
    for kind, i in [("train", 0), ("train", 9), ("test", 0), ("test", 9)]:
        img = decode_png(os.path.join(src, files[i if kind == "train" else N_TRAIN + i]))
        for c, r, k in [(0, 0, 0), (1, 15, 16), (2, 31, 31), (0, 5, 27), (2, 20, 3)]:
            px.append(f"{kind} {i} {c} {r} {k} {img[r, k, c]}")
    open(os.path.join(HERE, "pixels.txt"), "w").write("\n".join(px) + "\n")
    for name in sorted(os.listdir(HERE)):
        if name.endswith(".bin"):
            digest = hashlib.sha256(open(os.path.join(HERE, name), "rb").read())
            print(name, digest.hexdigest()[:16])
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1])
