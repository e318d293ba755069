/* SPDX-License-Identifier: MIT */
/*
 * dcpcheck.c - whole-checkpoint checks of a PyTorch distributed checkpoint
 * (DCP): the chunks of every tensor cover it exactly (within bounds, no
 * overlaps, no gaps: torch's _validate_global_plan, always applied), every
 * chunk and byte item has a storage entry, and every storage entry lies
 * inside an existing data file.  Every range torch.load is handed (each
 * bytes item, and each chunk: the layout ckpt reads, torch 1.13's, stores
 * every chunk as a torch.save archive, as dcptensor.c reads it) is either
 * exactly an archive the shard's reader scanned (torchzip.c walks them
 * back from the end) or is read here by the strict reader: a range aimed
 * at an archive hidden elsewhere in the shard is scanned all the same.
 *
 * Input is the metadata JSON the DCP reader (dcp.c) gives the .metadata
 * file:
 *   {"state_dict_metadata": {FQN: {"type": "tensor", "dtype": "F32",
 *        "size": [..], "chunks": [{"offsets": [..], "sizes": [..]}]}
 *                           | {"type": "bytes"}},
 *    "storage_data": {"FQN|o1,o2,..": {"relative_path": "__0_0.distcp",
 *        "offset": N, "length": M}}}
 * A byte item's storage key is "FQN|" (no offsets).
 */
#include "util/internal.h"

#include <sys/stat.h>

#include <jansson.h>

#include "checkpoint/checkpoint.h"
#include "checkpoint/dcptensor.h"
#include "format/file.h"

struct chunk {
	uint64_t off[CKPT_MAX_DIMS], len[CKPT_MAX_DIMS];
};

/* Copies the error findings of archive a (read here: not one the shard's
 * reader scanned) to the checkpoint, saying which item it is. */
static int
keep_archive_errors(struct ckpt_checkpoint *c, const struct ckpt_cp_file *cf,
    const char *key, const char *what, uint64_t base, uint64_t len,
    const struct ckpt_file *a)
{
	for (size_t i = 0; i < ckpt_file_finding_count(a); i++) {
		const struct ckpt_finding *x = ckpt_file_finding(a, i);

		if (x->severity != CKPT_SEV_ERROR)
			continue;
		if (ckpt_checkpoint_add_finding(c, x->id, CKPT_SEV_ERROR,
		    cf->path, x->subject ? x->subject : key, x->offset >= 0 ?
		    x->offset : (int64_t)base, "%s at bytes %llu-%llu (not an "
		    "archive found walking the shard): %s", what,
		    (unsigned long long)base, (unsigned long long)(base + len),
		    x->message))
			return CKPT_ERR_NOMEM;
	}
	return CKPT_OK;
}

/*
 * Whether the archive of chunk item (its "fqn" and "chunk" index) holds
 * the tensor the metadata's entry for it describes (dtype, rank, the
 * chunk's sizes): torch.load hands DCP whatever the archive holds, and
 * the copy into the chunk's box then fails, or reads the wrong bytes.
 */
static int
check_chunk_shape(struct ckpt_checkpoint *c, const struct ckpt_cp_file *cf,
    json_t *sdm, json_t *item, const char *key, uint64_t base,
    uint64_t len, const struct ckpt_file *a)
{
	const char *fqn = json_string_value(json_object_get(item, "fqn"));
	json_t *e = json_object_get(sdm, fqn ? fqn : "");
	json_t *ch = json_array_get(json_object_get(e, "chunks"),
	    (size_t)json_integer_value(json_object_get(item, "chunk")));
	const struct ckpt_tensor *x;
	struct ckpt_error why = { 0 };
	enum ckpt_dtype dt;
	uint64_t sizes[CKPT_MAX_DIMS];
	unsigned int nd;
	char *what;
	int rc;

	/* a tensor or chunk the metadata cannot describe is reported as
	 * such (dcp.c, and the chunk checks above) */
	if (!ch || ckpt_dtype_from_name(json_string_value(json_object_get(e,
	    "dtype")), &dt) || !ckpt_dcp_u64s(json_object_get(ch, "sizes"),
	    sizes, &nd))
		return CKPT_OK;
	if (asprintf(&what, "%s at bytes %llu-%llu",
	    json_string_value(json_object_get(item, "what")),
	    (unsigned long long)base, (unsigned long long)(base + len)) < 0)
		return CKPT_ERR_NOMEM;
	rc = ckpt_dcp_chunk_holds(a, cf->path, base, len, dt, nd, sizes, what,
	    &x, &why);
	free(what);
	if (rc == CKPT_ERR_NOMEM)
		return rc;
	if (rc && ckpt_checkpoint_add_finding(c, "dcp-chunk-mismatch",
	    CKPT_SEV_ERROR, cf->path, key, why.offset, "%s", why.message))
		return CKPT_ERR_NOMEM;
	return CKPT_OK;
}

/*
 * The storage entry (named key) of item (what torch.load reads from it)
 * lies at [base, base + len) of shard cf: unless the shard's reader
 * already scanned exactly that archive, read it here with the
 * checkpoint's allowlist and report what the strict reader refuses,
 * naming the shard, the item and the offset; a chunk's archive, scanned
 * or not, must hold the tensor its metadata describes.
 */
static int
check_loaded_range(struct ckpt_checkpoint *c, const struct ckpt_cp_file *cf,
    json_t *sdm, json_t *item, const char *key, uint64_t base, uint64_t len,
    struct ckpt_error *err)
{
	const char *what = json_string_value(json_object_get(item, "what"));
	bool chunk = json_object_get(item, "chunk") != NULL, scanned;
	struct ckpt_file *a = NULL;
	struct ckpt_error why = { 0 };
	int rc;

	if (!cf->file || (c->open.flags & CKPT_OPEN_NO_PICKLE))
		return CKPT_OK;
	scanned = ckpt_file_scanned_archive(cf->file, base, len);
	if (scanned && !chunk)
		return CKPT_OK;
	rc = ckpt_torchzip_open_archive(cf->file, base, len,
	    c->open.allow_globals, c->open.nallow_globals, &a, &why);
	if (rc == CKPT_ERR_NOMEM)
		return ckpt_error_nomem(err);
	if (rc && scanned)
		return CKPT_OK;	/* the shard's reader said why */
	if (rc)
		return ckpt_checkpoint_add_finding(c, "dcp-item-unreadable",
		    CKPT_SEV_ERROR, cf->path, key, why.offset >= 0 ?
		    why.offset : (int64_t)base, "%s at bytes %llu-%llu, which "
		    "torch.load would run, is not an archive the strict "
		    "reader accepts: %s", what, (unsigned long long)base,
		    (unsigned long long)(base + len), why.message) ?
		    ckpt_error_nomem(err) : CKPT_OK;
	if (!scanned)
		rc = keep_archive_errors(c, cf, key, what, base, len, a);
	if (!rc && chunk)
		rc = check_chunk_shape(c, cf, sdm, item, key, base, len, a);
	ckpt_torchzip_archive_free(a);
	return rc ? ckpt_error_nomem(err) : CKPT_OK;
}

/* Records that torch.load reads storage entry key as the item named by
 * fmt: chunk index chunk of tensor fqn, or (chunk < 0) a bytes item. */
static int
loaded_add(json_t *loaded, const char *key, const char *fqn, ssize_t chunk,
    const char *fmt, ...)
{
	va_list ap;
	char *what;
	json_t *item;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&what, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	item = chunk < 0 ? json_pack("{s:s}", "what", what) :
	    json_pack("{s:s, s:s, s:I}", "what", what, "fqn", fqn, "chunk",
	    (json_int_t)chunk);
	free(what);
	return json_object_set_new(loaded, key, item);
}

int
ckpt_check_dcp(struct ckpt_checkpoint *c, size_t mx, struct ckpt_error *err)
{
	const struct ckpt_cp_file *mcf = &c->files[mx];
	const char *mpath = mcf->path, *fqn, *key;
	json_t *doc, *sdm, *sd, *e, *v, *loaded = NULL;
	struct chunk *chunks = NULL;
	char *dir = NULL;
	int rc = CKPT_OK;

#define FINDING(id, sev, path, subj, at, ...)				\
	do {								\
		if (ckpt_checkpoint_add_finding(c, id, sev, path, subj, at, \
		    __VA_ARGS__)) {					\
			rc = ckpt_error_nomem(err);			\
			goto out;					\
		}							\
	} while (0)

	doc = json_loads(ckpt_file_metadata_json(mcf->file), 0, NULL);
	if (!doc)
		return CKPT_OK;		/* not DCP metadata after all */
	sdm = json_object_get(doc, "state_dict_metadata");
	sd = json_object_get(doc, "storage_data");
	if (!json_is_object(sdm) || !json_is_object(sd)) {
		json_decref(doc);
		return CKPT_OK;
	}
	dir = strdup(mcf->name);
	/* storage key -> the item torch.load would read from it */
	loaded = json_object();
	if (!dir || !loaded) {
		rc = ckpt_error_nomem(err);
		goto out;
	}
	if (strrchr(dir, '/'))
		strrchr(dir, '/')[1] = '\0';
	else
		dir[0] = '\0';

	json_object_foreach(sdm, fqn, e) {
		const char *type = json_string_value(json_object_get(e,
		    "type"));
		uint64_t size[CKPT_MAX_DIMS], numel = 1, vol_sum = 0;
		unsigned int nd;
		size_t nchunks, i;
		bool bad = false, overflow = false;
		json_t *ch;

		if (type && !strcmp(type, "bytes")) {
			char *k = ckpt_dcp_storage_key(fqn, NULL, 0);

			if (!k) {
				rc = ckpt_error_nomem(err);
				goto out;
			}
			if (!json_object_get(sd, k) &&
			    !json_object_get(sd, fqn)) {
				free(k);
				FINDING("dcp-item-no-storage", CKPT_SEV_ERROR,
				    mpath, fqn, ckpt_dcp_at(e), "byte item '%s' has "
				    "no storage entry", fqn);
				continue;
			}
			if (loaded_add(loaded, json_object_get(sd, k) ? k :
			    fqn, fqn, -1, "bytes item '%s'", fqn)) {
				free(k);
				rc = ckpt_error_nomem(err);
				goto out;
			}
			free(k);
			continue;
		}
		if (!type || strcmp(type, "tensor"))
			continue;
		if (!ckpt_dcp_u64s(json_object_get(e, "size"), size, &nd)) {
			FINDING("dcp-bad-metadata", CKPT_SEV_ERROR, mpath, fqn,
			    ckpt_dcp_at(e), "tensor '%s' has no valid size", fqn);
			continue;
		}
		ch = json_object_get(e, "chunks");
		nchunks = json_array_size(ch);
		free(chunks);
		chunks = calloc(nchunks ? nchunks : 1, sizeof(*chunks));
		if (!chunks) {
			rc = ckpt_error_nomem(err);
			goto out;
		}
		for (size_t d = 0; d < nd; d++)
			overflow |= !ckpt_mul_u64(numel, size[d], &numel);

		json_array_foreach(ch, i, v) {
			struct chunk *k = &chunks[i];
			unsigned int no, ns;
			uint64_t vol = 1, end;
			char *skey;
			json_t *si;

			if (!ckpt_dcp_u64s(json_object_get(v, "offsets"), k->off,
			    &no) || !ckpt_dcp_u64s(json_object_get(v, "sizes"),
			    k->len, &ns) || no != nd || ns != nd) {
				bad = true;
				FINDING("dcp-chunk-rank-mismatch",
				    CKPT_SEV_ERROR, mpath, fqn, ckpt_dcp_at(v),
				    "chunk %zu of tensor '%s' does not have "
				    "%u offsets and sizes", i, fqn, nd);
				continue;
			}
			for (size_t d = 0; d < nd; d++) {
				if (!ckpt_add_u64(k->off[d], k->len[d], &end) ||
				    end > size[d]) {
					bad = true;
					FINDING("dcp-chunk-out-of-bounds",
					    CKPT_SEV_ERROR, mpath, fqn,
					    ckpt_dcp_at(v), "chunk %zu of tensor "
					    "'%s' reaches %llu in dimension "
					    "%zu of size %llu", i, fqn,
					    (unsigned long long)k->off[d] +
					    k->len[d], d,
					    (unsigned long long)size[d]);
					break;
				}
				overflow |= !ckpt_mul_u64(vol, k->len[d],
				    &vol);
			}
			overflow |= !ckpt_add_u64(vol_sum, vol, &vol_sum);

			/* the chunk's bytes must be stored somewhere */
			skey = ckpt_dcp_storage_key(fqn, k->off, nd);
			if (!skey) {
				rc = ckpt_error_nomem(err);
				goto out;
			}
			si = json_object_get(sd, skey);
			if (si && loaded_add(loaded, skey, fqn, (ssize_t)i,
			    "chunk %zu of tensor '%s'", i, fqn)) {
				free(skey);
				rc = ckpt_error_nomem(err);
				goto out;
			}
			free(skey);
			if (!si)
				FINDING("dcp-chunk-no-storage", CKPT_SEV_ERROR,
				    mpath, fqn, ckpt_dcp_at(v), "chunk %zu of "
				    "tensor '%s' has no storage entry", i, fqn);
		}
		if (nd == 0 || bad)
			continue;	/* torch skips scalars */
		if (nchunks <= CKPT_DCP_MAX_PAIRWISE) {
			for (size_t a = 0; a < nchunks && !bad; a++)
				for (size_t b = a + 1; b < nchunks; b++)
					if (ckpt_dcp_boxes_overlap(
					    chunks[a].off, chunks[a].len,
					    chunks[b].off, chunks[b].len,
					    nd)) {
						bad = true;
						FINDING("dcp-chunk-overlap",
						    CKPT_SEV_ERROR, mpath, fqn,
						    ckpt_dcp_at(json_array_get(ch,
						    b)), "chunks %zu and "
						    "%zu of tensor '%s' "
						    "overlap", a, b, fqn);
						break;
					}
		}
		if (!bad && !overflow && vol_sum != numel)
			FINDING("dcp-chunk-gap", CKPT_SEV_ERROR, mpath, fqn,
			    ckpt_dcp_at(e), "the chunks of tensor '%s' cover %llu "
			    "of its %llu elements", fqn,
			    (unsigned long long)vol_sum,
			    (unsigned long long)numel);
	}

	/* Every storage entry inside an existing data file. */
	json_object_foreach(sd, key, v) {
		const char *rel = json_string_value(json_object_get(v,
		    "relative_path"));
		json_t *jo = json_object_get(v, "offset");
		json_t *jl = json_object_get(v, "length");
		char *name;
		ssize_t fi;
		uint64_t end, fsize;

		if (!rel || !json_is_integer(jo) || !json_is_integer(jl) ||
		    json_integer_value(jo) < 0 || json_integer_value(jl) < 0) {
			FINDING("dcp-bad-metadata", CKPT_SEV_ERROR, mpath, key,
			    -1, "storage entry '%s' lacks a file, offset or "
			    "length", key);
			continue;
		}
		if (!*rel || strchr(rel, '/') || !strcmp(rel, "..")) {
			FINDING("dcp-bad-storage-path", CKPT_SEV_ERROR, mpath,
			    key, -1, "storage entry '%s' names '%s', not a "
			    "file beside the metadata", key, rel);
			continue;
		}
		if (asprintf(&name, "%s%s", dir, rel) < 0) {
			rc = ckpt_error_nomem(err);
			goto out;
		}
		fi = ckpt_checkpoint_find(c, name);
		free(name);
		if (fi < 0) {
			FINDING("dcp-storage-file-missing", CKPT_SEV_ERROR,
			    mpath, key, -1, "data file '%s' of storage entry "
			    "'%s' is missing", rel, key);
			continue;
		}
		if (c->files[fi].file) {
			fsize = ckpt_file_size(c->files[fi].file);
		} else {
			/* a data file the readers refused still has a size */
			struct stat st;

			if (stat(c->files[fi].path, &st))
				continue;
			fsize = (uint64_t)st.st_size;
		}
		if (!ckpt_add_u64((uint64_t)json_integer_value(jo),
		    (uint64_t)json_integer_value(jl), &end) || end > fsize) {
			FINDING("dcp-storage-out-of-range", CKPT_SEV_ERROR,
			    c->files[fi].path, key, (int64_t)(fsize <
			    (uint64_t)json_integer_value(jo) ? fsize :
			    (uint64_t)json_integer_value(jo)), "storage entry "
			    "'%s' reaches byte %lld + %lld of '%s', which has "
			    "%llu bytes", key,
			    (long long)json_integer_value(jo),
			    (long long)json_integer_value(jl), rel,
			    (unsigned long long)fsize);
			continue;
		}
		if (json_object_get(loaded, key) && (rc = check_loaded_range(c,
		    &c->files[fi], sdm, json_object_get(loaded, key), key,
		    (uint64_t)json_integer_value(jo),
		    (uint64_t)json_integer_value(jl), err)))
			goto out;
	}
out:
#undef FINDING
	json_decref(loaded);
	free(chunks);
	free(dir);
	json_decref(doc);
	return rc;
}
