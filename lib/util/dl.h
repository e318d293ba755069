/* SPDX-License-Identifier: MIT */
/*
 * dl.h - libraries loaded when first needed (dlopen), not at start-up.
 *
 * A library linked into ckpt is mapped and relocated, with every library
 * it needs, before main, by every command.  Two that serve few commands
 * are loaded here instead, by their soname: libcurl (s3:// stores,
 * store/s3curl.c) and libarchive (bundles and deflated zip members,
 * util/libarchive.c).  Each is built against the library's headers and
 * checks, when loaded, that every function it takes is there.
 */
#ifndef CKPT_DL_H
#define CKPT_DL_H

#include "util/internal.h"

/*
 * Opens the library soname (RTLD_NOW | RTLD_LOCAL: its symbols serve
 * ckpt, never another library) into *lib, never closed.  CKPT_ERR_IO
 * when it cannot be loaded, "<need>, which cannot be loaded (<hint>):
 * <dlerror>": the machine, not the request, is at fault.
 */
int ckpt_dl_open(const char *soname, const char *need, const char *hint,
    void **lib, struct ckpt_error *err);

/*
 * Sets the function pointer at fnp (of any function type) to lib's
 * symbol name.  CKPT_ERR_IO "<soname> has no <name>, so it is not
 * <what>" when it lacks it.
 */
int ckpt_dl_sym(void *lib, const char *soname, const char *what,
    const char *name, void *fnp, struct ckpt_error *err);

#endif
