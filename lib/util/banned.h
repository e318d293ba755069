/* SPDX-License-Identifier: MIT */
/*
 * banned.h - functions that are too easy to misuse; git's list plus atoi,
 * atol, strtok and tmpnam.  Use snprintf, strtoll with an end pointer,
 * gmtime_r, localtime_r, mkstemp.
 */
#ifndef CKPT_BANNED_H
#define CKPT_BANNED_H

#define BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) BANNED(strncat)
#undef strtok
#define strtok(x, y) BANNED(strtok)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef gmtime
#define gmtime(t) BANNED(gmtime)
#undef localtime
#define localtime(t) BANNED(localtime)
#undef ctime
#define ctime(t) BANNED(ctime)
#undef asctime
#define asctime(t) BANNED(asctime)
#undef mktemp
#define mktemp(x) BANNED(mktemp)
#undef atoi
#define atoi(x) BANNED(atoi)
#undef atol
#define atol(x) BANNED(atol)
#undef tmpnam
#define tmpnam(x) BANNED(tmpnam)

#endif /* CKPT_BANNED_H */
