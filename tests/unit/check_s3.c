/* SPDX-License-Identifier: MIT */
/*
 * check_s3.c - the S3 client's strict parsers: the XML reader (paths and
 * decoded text; what it refuses, with byte offsets), the ListObjectsV2
 * page reader, the INI reader of ~/.aws/credentials and config, and the
 * loading of libcurl.  The client's requests are tested against a real
 * RGW in t7001-t7003.
 */
#include "unit.h"
#include "store/s3curl.h"
#include "store/s3int.h"

/* Collected "path=text" lines (text "-" for elements with children). */
static char seen[4096];

static int
collect(void *arg, const char *path, const char *text, size_t len)
{
	size_t n = strlen(seen);

	(void)arg;
	ck_assert(text == NULL || strlen(text) == len);
	snprintf(seen + n, sizeof(seen) - n, "%s=%s\n", path,
	    text ? text : "-");
	return 0;
}

static int
xml(const char *doc, struct ckpt_error *err)
{
	seen[0] = '\0';
	return ckpt_s3_xml_parse(doc, strlen(doc), "t.xml", collect, NULL,
	    err);
}

START_TEST(test_xml_paths_and_text)
{
	struct ckpt_error err;

	ck_assert_int_eq(xml("<?xml version=\"1.0\"?>\n<!-- c -->"
	    "<R a=\"1\" b='&amp;'><K>x &lt;&gt;&amp;&quot;&apos; &#65;&#x42;"
	    "&#xe9;</K><E/><N><C><![CDATA[<raw>]]></C></N></R>\n", &err), 0);
	ck_assert_str_eq(seen, "R/K=x <>&\"' AB\xc3\xa9\nR/E=\n"
	    "R/N/C=<raw>\nR/N=-\nR=-\n");
}
END_TEST

static void
xml_refused(const char *doc, int64_t offset, const char *what)
{
	struct ckpt_error err;

	ck_assert_int_eq(xml(doc, &err), CKPT_ERR_FORMAT);
	ck_assert_msg(strstr(err.message, what), "%s: got '%s'", doc,
	    err.message);
	ck_assert_int_eq(err.offset, offset);
	ck_assert_str_eq(err.path, "t.xml");
}

START_TEST(test_xml_refusals)
{
	char deep[512] = "";

	xml_refused("<!DOCTYPE x [<!ENTITY a \"b\">]><x>&a;</x>", 0,
	    "DOCTYPE");
	xml_refused("<a>&a;</a>", 3, "unknown entity");
	xml_refused("<a>&#0;</a>", 3, "non-character");
	xml_refused("<a>&#xd800;</a>", 3, "non-character");
	xml_refused("<a>&#123456789;</a>", 3, "too long");
	xml_refused("<a></b>", 3, "does not match");
	xml_refused("<a>t<b/></a>", 4, "mixed");
	xml_refused("<a><b/>t</a>", 8, "mixed");
	xml_refused("<a>", 3, "ends inside");
	xml_refused("<a/><b/>", 4, "after the root");
	xml_refused("", 0, "no root");
	xml_refused("text", 0, "no root");
	xml_refused("<a x=1/>", 5, "quoted attribute");
	xml_refused("<a\x01/>", 2, "");
	xml_refused("<a>\x01</a>", 3, "control character");
	xml_refused("<a><!-- x </a>", 7, "unterminated comment");
	for (int i = 0; i < 17; i++)
		memcpy(deep + 3 * i, "<d>", 4);
	xml_refused(deep, 48, "nested too deeply");
}
END_TEST

START_TEST(test_xml_no_read_past_len)
{
	struct ckpt_error err;
	char doc[] = "<a>xy</a>";

	/* Cut inside the end tag: the NUL after it must not be read. */
	seen[0] = '\0';
	ck_assert_int_eq(ckpt_s3_xml_parse(doc, 7, "t.xml", collect, NULL,
	    &err), CKPT_ERR_FORMAT);
}
END_TEST

static char listed[4096];

static int
on_entry(void *arg, const char *key, const struct ckpt_s3_object *obj)
{
	size_t n = strlen(listed);

	(void)arg;
	if (obj)
		snprintf(listed + n, sizeof(listed) - n, "%s %llu %s\n", key,
		    (unsigned long long)obj->size, obj->etag);
	else
		snprintf(listed + n, sizeof(listed) - n, "%s\n", key);
	return 0;
}

START_TEST(test_list_page)
{
	const char *doc = "<ListBucketResult xmlns=\"x\"><IsTruncated>true"
	    "</IsTruncated><NextContinuationToken>tok/=</NextContinuationToken>"
	    "<Contents><Key>a&amp;b</Key><ETag>&quot;e1&quot;</ETag>"
	    "<Size>12</Size></Contents><CommonPrefixes><Prefix>p/</Prefix>"
	    "</CommonPrefixes></ListBucketResult>";
	struct ckpt_error err;
	bool truncated;
	char *token;

	listed[0] = '\0';
	ck_assert_int_eq(ckpt_s3_list_parse(doc, strlen(doc), "l", on_entry,
	    NULL, &truncated, &token, &err), 0);
	ck_assert_str_eq(listed, "a&b 12 e1\np/\n");
	ck_assert(truncated);
	ck_assert_str_eq(token, "tok/=");
	free(token);
}
END_TEST

START_TEST(test_list_refusals)
{
	static const char *const bad[] = {
		"<Error><Code>x</Code></Error>",
		"<ListBucketResult><IsTruncated>true</IsTruncated>"
		    "</ListBucketResult>",
		"<ListBucketResult><IsTruncated>yes</IsTruncated>"
		    "</ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key></Contents>"
		    "</ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>-1</Size>"
		    "</Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k&#x0;</Key><Size>1</Size>"
		    "</Contents></ListBucketResult>",
	};
	struct ckpt_error err;
	bool truncated;
	char *token;

	for (size_t i = 0; i < CKPT_ARRAY_SIZE(bad); i++) {
		listed[0] = '\0';
		ck_assert_int_eq(ckpt_s3_list_parse(bad[i], strlen(bad[i]), "l",
		    on_entry, NULL, &truncated, &token, &err),
		    CKPT_ERR_FORMAT);
	}
}
END_TEST

static int
ini_collect(void *arg, const char *section, const char *key,
    const char *value)
{
	size_t n = strlen(seen);

	(void)arg;
	snprintf(seen + n, sizeof(seen) - n, "[%s] %s=%s\n", section, key,
	    value);
	return 0;
}

static int
ini(const char *text, struct ckpt_error *err)
{
	seen[0] = '\0';
	return ckpt_s3_ini_parse(text, strlen(text), "cfg", ini_collect, NULL,
	    err);
}

START_TEST(test_ini_read)
{
	struct ckpt_error err;

	ck_assert_int_eq(ini("# c\n; c\n[default]\r\nregion = eu-west-1 \r\n"
	    "\n[profile  dev ]\nkey=a = b#c\ns3 =\n  addressing_style = path\n"
	    "\tmax = 2\nafter = 1\n", &err), 0);
	ck_assert_str_eq(seen, "[default] region=eu-west-1\n"
	    "[profile  dev] key=a = b#c\n"
	    "[profile  dev] s3.addressing_style=path\n"
	    "[profile  dev] s3.max=2\n[profile  dev] after=1\n");
}
END_TEST

static void
ini_refused(const char *text, int64_t offset, const char *what)
{
	struct ckpt_error err;

	ck_assert_int_eq(ini(text, &err), CKPT_ERR_FORMAT);
	ck_assert_msg(strstr(err.message, what), "%s: got '%s'", text,
	    err.message);
	ck_assert_int_eq(err.offset, offset);
	ck_assert_str_eq(err.path, "cfg");
}

START_TEST(test_ini_refusals)
{
	char nul[] = "[a]\nk = v\0x\n";
	struct ckpt_error err;

	ini_refused("k = v\n", 0, "before the first [section]");
	ini_refused("[a\n", 1, "without ']'");
	ini_refused("[ ]\n", 0, "empty section name");
	ini_refused("[a[b]\n", 2, "bracket");
	ini_refused("[a]\njunk\n", 4, "not 'key = value'");
	ini_refused("[a]\n= v\n", 4, "empty key");
	ini_refused("[a]\nk y = v\n", 5, "bad character in a key");
	ini_refused("[a]\n  k = v\n", 6, "outside a nested block");
	ini_refused("[a]\nk = \x1b\n", 8, "control character");
	ck_assert_int_eq(ckpt_s3_ini_parse(nul, sizeof(nul) - 1, "cfg",
	    ini_collect, NULL, &err), CKPT_ERR_FORMAT);
	ck_assert_int_eq(err.offset, 9);
}
END_TEST

/* AWS's documented example (S3 SigV4, "GET Object" with a Range). */
START_TEST(test_sigv4_aws_example)
{
	const char *h[] = { "Host: examplebucket.s3.amazonaws.com",
	    "Range:  bytes=0-9 ", ("x-amz-content-sha256: "
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
	    "X-Amz-Date: 20130524T000000Z" };
	struct ckpt_s3_sig in = { .method = "GET", .uri = "/test.txt",
	    .query = "", .headers = h, .nheaders = 4,
	    .payload_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b9"
	    "34ca495991b7852b855", .amz_date = "20130524T000000Z",
	    .region = "us-east-1", .access_key = "AKIAIOSFODNN7EXAMPLE",
	    .secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" };
	char *auth;

	ck_assert_int_eq(ckpt_s3_sigv4(&in, &auth), 0);
	ck_assert_str_eq(auth, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE"
	    "/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;"
	    "x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd"
	    "35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	free(auth);
}
END_TEST

/* The order curl 7.88 gets wrong: by name, "x-amz-copy-source" first. */
START_TEST(test_sigv4_copy_source_order)
{
	const char *a[] = { "x-amz-copy-source-range: bytes=0-9",
	    "x-amz-copy-source: /b/k", "host: h",
	    "x-amz-date: 20260101T000000Z",
	    "x-amz-content-sha256: UNSIGNED-PAYLOAD" };
	const char *b[] = { "host: h", "x-amz-copy-source: /b/k",
	    "x-amz-copy-source-range: bytes=0-9",
	    "x-amz-content-sha256: UNSIGNED-PAYLOAD",
	    "x-amz-date: 20260101T000000Z" };
	struct ckpt_s3_sig in = { .method = "PUT", .uri = "/b/d",
	    .query = "partNumber=1&uploadId=x", .headers = a, .nheaders = 5,
	    .payload_sha256 = "UNSIGNED-PAYLOAD",
	    .amz_date = "20260101T000000Z", .region = "r",
	    .access_key = "A", .secret_key = "S" };
	char *x, *y;

	ck_assert_int_eq(ckpt_s3_sigv4(&in, &x), 0);
	in.headers = b;
	ck_assert_int_eq(ckpt_s3_sigv4(&in, &y), 0);
	ck_assert_str_eq(x, y);
	ck_assert_ptr_nonnull(strstr(x, "SignedHeaders=host;x-amz-content-"
	    "sha256;x-amz-copy-source;x-amz-copy-source-range;x-amz-date,"));
	free(x);
	free(y);
	in.amz_date = "2026";
	ck_assert_int_eq(ckpt_s3_sigv4(&in, &x), CKPT_ERR_INVALID);
}
END_TEST

static int
upload_collect(void *arg, const struct ckpt_s3_upload *u)
{
	char *out = arg;

	snprintf(out + strlen(out), 256 - strlen(out), "%s %s %lld;", u->key,
	    u->upload_id, (long long)u->initiated);
	return 0;
}

START_TEST(test_uploads_page)
{
	static const char doc[] = "<?xml version=\"1.0\"?>"
	    "<ListMultipartUploadsResult><Bucket>b</Bucket>"
	    "<NextKeyMarker>p/b</NextKeyMarker>"
	    "<NextUploadIdMarker>2~y</NextUploadIdMarker>"
	    "<IsTruncated>true</IsTruncated>"
	    "<Upload><Key>p/a</Key><UploadId>2~x</UploadId>"
	    "<Initiated>2026-12-03T15:14:56.000Z</Initiated></Upload>"
	    "<Upload><Key>p/b</Key><UploadId>2~y</UploadId></Upload>"
	    "</ListMultipartUploadsResult>";
	char out[256] = "", *k, *i;
	struct ckpt_error err;
	bool more;

	ck_assert_int_eq(ckpt_s3_uploads_parse(doc, sizeof(doc) - 1, "l",
	    upload_collect, out, &more, &k, &i, &err), 0);
	ck_assert_str_eq(out, "p/a 2~x 1796310896;p/b 2~y 0;");
	ck_assert(more);
	ck_assert_str_eq(k, "p/b");
	ck_assert_str_eq(i, "2~y");
	free(k);
	free(i);
	ck_assert_int_eq(ckpt_s3_uploads_parse("<ListMultipartUploadsResult>"
	    "<Upload><Key>a</Key></Upload></ListMultipartUploadsResult>", 86,
	    "l", upload_collect, out, &more, &k, &i, &err), CKPT_ERR_FORMAT);
	ck_assert_int_eq(ckpt_s3_uploads_parse("<ListMultipartUploadsResult>"
	    "<IsTruncated>true</IsTruncated></ListMultipartUploadsResult>",
	    88, "l", upload_collect, out, &more, &k, &i, &err),
	    CKPT_ERR_FORMAT);
	ck_assert_int_eq(ckpt_s3_uploads_parse("<Error/>", 8, "l",
	    upload_collect, out, &more, &k, &i, &err), CKPT_ERR_FORMAT);
}
END_TEST

/* libcurl is found by its soname and hands over every function. */
START_TEST(test_curl_load)
{
	const struct ckpt_curl *cu, *again;
	struct ckpt_curl api;
	struct ckpt_error err;
	struct curl_slist *l;

	ck_assert_int_eq(ckpt_curl_load_from(CKPT_CURL_SONAME, &api, &err), 0);
	ck_assert_str_eq(api.easy_strerror(CURLE_OK), "No error");
	ck_assert_ptr_nonnull(l = api.slist_append(NULL, "a: b"));
	ck_assert_str_eq(l->data, "a: b");
	api.slist_free_all(l);
	ck_assert_int_eq(api.getdate("Thu, 01 Jan 1970 00:01:40 GMT", NULL),
	    100);
	ck_assert_int_eq(ckpt_curl_load(&cu, &err), 0);
	ck_assert_int_eq(ckpt_curl_load(&again, &err), 0);
	ck_assert_ptr_eq(cu, again);
	ck_assert_ptr_nonnull(cu->easy_perform);
}
END_TEST

/* A missing library, or one that is not libcurl, is an error naming it. */
START_TEST(test_curl_load_refusals)
{
	struct ckpt_curl api;
	struct ckpt_error err;

	ck_assert_int_eq(ckpt_curl_load_from("libckpt-no-such-curl.so.4", &api,
	    &err), CKPT_ERR_IO);
	ck_assert_ptr_nonnull(strstr(err.message, "need libcurl"));
	ck_assert_ptr_nonnull(strstr(err.message, "libckpt-no-such-curl.so.4"));
	ck_assert_ptr_null(api.easy_init);
	/* libm loads, and has no curl_version_info. */
	ck_assert_int_eq(ckpt_curl_load_from("libm.so.6", &api, &err),
	    CKPT_ERR_IO);
	ck_assert_ptr_nonnull(strstr(err.message,
	    "libm.so.6 has no curl_version_info, so it is not libcurl"));
}
END_TEST

Suite *
s3_suite(void)
{
	Suite *s = suite_create("s3");

	TCASE(s, "xml", NULL, NULL, test_xml_paths_and_text,
	    test_xml_refusals, test_xml_no_read_past_len);
	TCASE(s, "list", NULL, NULL, test_list_page, test_list_refusals);
	TCASE(s, "ini", NULL, NULL, test_ini_read, test_ini_refusals);
	TCASE(s, "sigv4", NULL, NULL, test_sigv4_aws_example,
	    test_sigv4_copy_source_order);
	TCASE(s, "uploads", NULL, NULL, test_uploads_page);
	TCASE(s, "curl", NULL, NULL, test_curl_load, test_curl_load_refusals);
	return s;
}
