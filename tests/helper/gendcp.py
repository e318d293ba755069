# SPDX-License-Identifier: MIT
#
# gendcp.py - for the mk-*-dcp.py helpers: load() runs
# tests/fixtures/gen-dcp.py (into a scratch directory, for its own
# fixtures) so that the DCP dataclasses it registers under torch's module
# names (Metadata, MetadataIndex, _StorageInfo, ...) unpickle a .metadata,
# and returns that module.
import importlib.util
import os
import sys
import tempfile


def load():
    here = os.path.dirname(os.path.abspath(__file__))
    argv = sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        sys.argv = [argv[0], tmp]
        try:
            spec = importlib.util.spec_from_file_location(
                "gen_dcp", os.path.join(here, "..", "fixtures", "gen-dcp.py"))
            g = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(g)
        finally:
            sys.argv = argv
    return g
