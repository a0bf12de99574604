/* SPDX-License-Identifier: MIT */
#include <ferry/error.h>

#include <string.h>

static const char *const ferry_msgs[] = {
	[FERRY_EREJECTED - FERRY_ERRNO_BASE] = "connect rejected by peer",
	[FERRY_ENOMETHOD - FERRY_ERRNO_BASE] = "no handler for method",
	[FERRY_EVERSION - FERRY_ERRNO_BASE] = "unsupported wire version",
	[FERRY_EPROTO - FERRY_ERRNO_BASE] = "wire protocol violation",
};

const char *ferry_strerror(int err)
{
	if (err < 0)
		err = -err;
	if (err == 0)
		return "success";
	if (err >= FERRY_ERRNO_BASE && err < FERRY_ERRNO_MAX)
		return ferry_msgs[err - FERRY_ERRNO_BASE];
	if (err >= FERRY_ERRNO_BASE)
		return "unknown ferry error";
	/* strerror() may format into a shared buffer; strerrordesc_np()
	 * only returns constant strings, so it is safe from any thread. */
	{
		const char *d = strerrordesc_np(err);

		return d ? d : "unknown error";
	}
}
