#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# edit-bundle-list.py IN OUT CODE - rewrites ckpt-bundle.json of the bundle
# IN (a plain tar made by "ckpt export") into OUT, every other entry as it
# was and in the same order: CODE is Python run with "doc" bound to the
# parsed list, changed in place (for tests of hostile model versions).
import io
import json
import sys
import tarfile

src, dst, code = sys.argv[1:4]
with tarfile.open(src) as tin, tarfile.open(dst, "w",
                                            format=tarfile.PAX_FORMAT) as tout:
    for m in tin.getmembers():
        data = tin.extractfile(m).read() if m.isfile() else None
        if m.name == "ckpt-bundle.json":
            doc = json.loads(data)
            exec(code, {"doc": doc, "json": json})
            data = json.dumps(doc, indent=2, sort_keys=True).encode()
            m.size = len(data)
        tout.addfile(m, io.BytesIO(data) if data is not None else None)
