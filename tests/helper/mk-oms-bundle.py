#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# mk-oms-bundle.py - signs a model directory the way the OpenSSF model
# signing spec v1.0 describes ("key" method, "files" serialization,
# SHA-256), written from the spec (security.md section 1), independent of
# ckpt's C code: in-toto statement -> DSSE envelope (PAE) -> bundle.
#
#   mk-oms-bundle.py MODEL_DIR BUNDLE KEY_PREFIX [p256|p384]
# writes BUNDLE and KEY_PREFIX.pem (public key); the bundle is excluded
# from the resources.
import base64
import hashlib
import json
import os
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

model, bundle, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
curve = sys.argv[4] if len(sys.argv) > 4 else "p256"
key = ec.generate_private_key(ec.SECP384R1() if curve == "p384"
                              else ec.SECP256R1())
h = hashes.SHA384() if curve == "p384" else hashes.SHA256()
pem = key.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
open(prefix + ".pem", "wb").write(pem)

babs = os.path.abspath(bundle)
resources = []
for root, dirs, files in os.walk(model):
    for f in files:
        p = os.path.join(root, f)
        if os.path.abspath(p) == babs:
            continue
        rel = os.path.relpath(p, model).replace(os.sep, "/")
        resources.append({"name": rel, "algorithm": "sha256",
                          "digest": hashlib.sha256(open(p, "rb").read())
                          .hexdigest()})
resources.sort(key=lambda r: r["name"])
root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"])
                               for r in resources)).hexdigest()
statement = {
    "_type": "https://in-toto.io/Statement/v1",
    "subject": [{"name": os.path.basename(os.path.abspath(model)),
                 "digest": {"sha256": root}}],
    "predicateType": "https://model_signing/signature/v1.0",
    "predicate": {"resources": resources,
                  "serialization": {"method": "files", "hash_type": "sha256",
                                    "allow_symlinks": False,
                                    "ignore_paths": []}},
}
payload = json.dumps(statement, sort_keys=True).encode()
ptype = "application/vnd.in-toto+json"
pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype.encode(), len(payload),
                               payload)
sig = key.sign(pae, ec.ECDSA(h))
doc = {
    "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
    "verificationMaterial": {"publicKey": {
        "hint": hashlib.sha256(pem).hexdigest()}},
    "dsseEnvelope": {"payload": base64.b64encode(payload).decode(),
                     "payloadType": ptype,
                     "signatures": [{"sig": base64.b64encode(sig).decode(),
                                     "keyid": ""}]},
}
open(bundle, "w").write(json.dumps(doc, indent=2))
