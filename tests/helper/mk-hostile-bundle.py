#!/usr/bin/python3
# SPDX-License-Identifier: MIT
#
# mk-hostile-bundle.py GOOD.tar KIND OUT.tar - a hostile variant of a good
# bundle made by "ckpt export" (plain tar), for the import tests:
#   dotdot     an entry "../evil" added after the list
#   absolute   an entry "/tmp/evil"
#   symlink    a checkpoint file replaced by a symbolic link
#   hardlink   a checkpoint file replaced by a hard link to the list
#   device     a checkpoint file replaced by a character device node
#   duplicate  the manifest entry given twice
#   bigger     a file's header size larger than the manifest says (data
#              padded with zeros)
#   truncated  the archive cut in the middle of the last file
#   tampered   one byte of the last file's data flipped
#   unlisted   an extra file inside the checkpoint directory
import io
import sys
import tarfile

good, kind, out = sys.argv[1], sys.argv[2], sys.argv[3]
src = tarfile.open(good)
members = [(m, src.extractfile(m).read() if m.isfile() else None)
           for m in src.getmembers()]
last = max(i for i, (m, _) in enumerate(members) if m.isfile())


def regular(name, data):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = 0o644
    return ti, data


if kind == "dotdot":
    members.insert(1, regular("../evil", b"x"))
elif kind == "absolute":
    members.insert(1, regular("/tmp/evil", b"x"))
elif kind in ("symlink", "hardlink", "device"):
    m, _ = members[last]
    ti = tarfile.TarInfo(m.name)
    if kind == "symlink":
        ti.type, ti.linkname = tarfile.SYMTYPE, "/etc/passwd"
    elif kind == "hardlink":
        ti.type, ti.linkname = tarfile.LNKTYPE, "ckpt-bundle.json"
    else:
        ti.type, ti.devmajor, ti.devminor = tarfile.CHRTYPE, 1, 3
    members[last] = (ti, None)
elif kind == "duplicate":
    members.insert(2, members[1])
elif kind == "bigger":
    m, data = members[last]
    members[last] = regular(m.name, data + b"\0" * 4096)
elif kind == "tampered":
    m, data = members[last]
    data = bytearray(data)
    data[len(data) // 2] ^= 1
    members[last] = regular(m.name, bytes(data))
elif kind == "unlisted":
    m, _ = members[last]
    members.insert(last, regular(m.name.split("/")[0] + "/zzz-extra", b"x"))
elif kind != "truncated":
    sys.exit("unknown kind " + kind)

buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    for ti, data in members:
        t.addfile(ti, io.BytesIO(data) if data is not None else None)
raw = buf.getvalue()
if kind == "truncated":
    raw = raw[:len(raw) * 2 // 3]
with open(out, "wb") as f:
    f.write(raw)
