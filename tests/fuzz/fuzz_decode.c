/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer harness for dt_msg_decode(), the daemon's first contact with
 * bytes from an untrusted VMM. Input: one selector byte (nfds = byte % 3,
 * so a fd count above DT_MSG_MAX_FDS is tried too), then the datagram.
 * decode never closes fds, so the dummies are -1 (nothing to close anyway).
 *
 * Beyond "no crash": whatever decodes must re-encode to the same bytes, so
 * the decoder accepts exactly the canonical form the encoder produces.
 */
#include "dt_proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t again[DT_MSG_MAX];
	struct dt_msg m;
	unsigned nfds;
	int r, n;

	if (size < 1)
		return 0;
	nfds = data[0] % 3;
	data++;
	size--;

	memset(&m, 0, sizeof(m));
	for (unsigned i = 0; i < DT_MSG_MAX_FDS; i++)
		m.fds[i] = -1;
	r = dt_msg_decode(data, size, nfds, &m);
	switch (r) {
	case 0:
		break;
	case -EBADMSG:
	case -EPROTONOSUPPORT:
	case -EOPNOTSUPP:
	case -EPROTO:
	case -EMSGSIZE:
	case -EBADF:
		/* names are total functions of any 16-bit type */
		(void)dt_msg_type_name(m.hdr.type);
		return 0;
	default:
		abort(); /* an errno the header does not document */
	}

	if (m.nfds != nfds || (int)m.nfds != dt_msg_fd_count(m.hdr.type) ||
	    m.hdr.len != (uint32_t)dt_msg_payload_size(m.hdr.type))
		abort();
	n = dt_msg_encode(again, sizeof(again), m.hdr.type, m.hdr.seq, &m.u, m.nfds);
	if (n < 0 || (size_t)n != size || memcmp(again, data, size) != 0)
		abort();
	return 0;
}
