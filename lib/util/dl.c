/* SPDX-License-Identifier: MIT */
/*
 * dl.c - loading a library when first needed (see dl.h for why).
 */
#include "util/internal.h"

#include <dlfcn.h>

#include "util/dl.h"

/* POSIX: a symbol's void * holds a function pointer of the same size. */
_Static_assert(sizeof(void *) == sizeof(void (*)(void)),
    "dlsym's pointers are function pointers");

int
ckpt_dl_open(const char *soname, const char *need, const char *hint,
    void **lib, struct ckpt_error *err)
{
	if (!(*lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL))) {
		const char *why = dlerror();

		return ckpt_error_set(err, CKPT_ERR_IO, NULL, -1,
		    "%s, which cannot be loaded (%s): %s", need, hint,
		    why ? why : soname);
	}
	return CKPT_OK;
}

int
ckpt_dl_sym(void *lib, const char *soname, const char *what,
    const char *name, void *fnp, struct ckpt_error *err)
{
	void *p;

	(void)dlerror();
	if (!(p = dlsym(lib, name))) {
		const char *why = dlerror();

		return ckpt_error_set(err, CKPT_ERR_IO, NULL, -1,
		    "%s has no %s, so it is not %s%s%s", soname, name, what,
		    why ? ": " : "", why ? why : "");
	}
	memcpy(fnp, &p, sizeof(p));
	return CKPT_OK;
}
