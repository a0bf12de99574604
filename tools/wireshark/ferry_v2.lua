-- ferry_v2.lua: wire v2 (docs/wire.md) for ferry.lua, which loads it
-- from its own folder and calls W.dissect_v2_short for a first byte
-- 0x80..0xBF and W.dissect_v2_long for 0xC0..0xFF; a v1 CONNECT's WIRE2
-- TLV (0x86, the envelope of section 4.2) holds a long-header CONNECT.
--
-- Headers, frames and the CRC32C trailer of `none` mode (and of CONNECT,
-- RETRY and REFUSE) are checked; a Poly1305 tag is shown, not checked (it
-- needs the session's keys), and `aead` frames are shown as ciphertext.
-- Message bodies (trace block, token table, attribute block, error body,
-- PUSH records) keep v1's layouts and go through ferry_body.lua.
--
-- What a capture holds beyond one datagram is followed on the first pass:
-- a handshake (CONNECT, ACCEPT) names both CIDs, the session's mode and
-- both max_frames, so that the short headers after it are checked against
-- the session's mode and their fragments against its grid (frag_unit,
-- section 5.6); packet numbers are reconstructed per DCID (section 2.1),
-- and one seen twice is flagged (a retransmission never repeats a pn); a
-- data or PUSH frame sent again under a new pn is marked as a
-- retransmission of the first datagram that carried it.

local W = ...
local f, ex, F, E = W.f, W.ex, W.F, W.E
local band, rshift, bxor = W.band, W.rshift, W.bxor
local FT, FF_TRACE, FF_CAPS = W.FT, W.FF_TRACE, W.FF_CAPS
local error_codes = W.error_codes

local modes = { [0] = "none", [1] = "mac", [2] = "aead", [3] = "invalid" }
local long_types = { [0] = "CONNECT", [1] = "RETRY", [2] = "ACCEPT",
	[3] = "REFUSE" }
local S, H = 1, 2 -- where a frame type may appear: short, handshake
local frame_types = {
	[0x00] = { "PADDING", S + H }, [0x01] = { "PING", S },
	[0x02] = { "ACK", S }, [0x03] = { "CREDIT", S }, [0x04] = { "CLOSE", S },
	[0x08] = { "REQUEST", S }, [0x09] = { "REQUEST_FRAG", S },
	[0x0A] = { "RESPONSE", S }, [0x0B] = { "RESPONSE_FRAG", S },
	[0x0C] = { "PUSH", S }, [0x20] = { "HELLO", H }, [0x21] = { "PARAMS", H },
	[0x22] = { "FEATURES", H }, [0x23] = { "COOKIE", H },
	[0x24] = { "TOKEN", H }, [0x25] = { "POP", H },
	[0x26] = { "TRACEPARENT", H }, [0x27] = { "TRACESTATE", H },
	[0x28] = { "ERROR", H },
}
local frame_names = {}
for k, v in pairs(frame_types) do frame_names[k] = v[1] end
-- Flags each type defines; others must be 0.
local frame_flags = { [0x02] = 0x1, [0x04] = 0x1, [0x08] = 0x3,
	[0x09] = 0x3, [0x0A] = 0x3, [0x0B] = 0x2 }
-- Fixed body lengths.
local fixed_len = { [0x01] = 0, [0x03] = 4, [0x20] = 36, [0x21] = 16,
	[0x22] = 4, [0x23] = 20, [0x25] = 16, [0x26] = 55 }
-- Shortest bodies: the fixed fields (a REQUEST_FRAG or RESPONSE_FRAG also
-- needs a byte, which dissect_call checks).
local min_len = { [0x02] = 8, [0x04] = 6, [0x08] = 6, [0x09] = 14,
	[0x0A] = 4, [0x0B] = 12, [0x0C] = 4, [0x24] = 1, [0x27] = 0,
	[0x28] = 6 }

F("v2_first", ProtoField.uint8("ferry.v2.first", "First byte", base.HEX))
F("v2_key_phase", ProtoField.uint8("ferry.v2.key_phase", "Key phase",
	base.DEC, nil, 0x20))
F("v2_short_rsvd", ProtoField.uint8("ferry.v2.reserved", "Reserved",
	base.HEX, nil, 0x1c))
F("v2_mode", ProtoField.uint8("ferry.v2.mode", "Mode", base.DEC, modes,
	0x03))
F("v2_long_rsvd", ProtoField.uint8("ferry.v2.long_reserved", "Reserved",
	base.HEX, nil, 0x30))
F("v2_long_type", ProtoField.uint8("ferry.v2.long_type", "Type", base.DEC,
	long_types, 0x0f))
F("v2_version", ProtoField.uint8("ferry.v2.version", "Version", base.DEC))
F("v2_dcid", ProtoField.uint64("ferry.v2.dcid", "Destination CID",
	base.HEX))
F("v2_scid", ProtoField.uint64("ferry.v2.scid", "Source CID", base.HEX))
F("v2_cid", ProtoField.uint64("ferry.v2.cid", "CID (either)", base.HEX))
F("v2_pn", ProtoField.uint32("ferry.v2.pn", "Packet number (low 32 bits)",
	base.DEC))
F("v2_frame", ProtoField.bytes("ferry.v2.frame", "Frame"))
F("v2_ftype", ProtoField.uint8("ferry.v2.frame.type", "Type", base.HEX,
	frame_names))
F("v2_fflags", ProtoField.uint8("ferry.v2.frame.flags", "Flags", base.HEX))
F("v2_flen", ProtoField.uint16("ferry.v2.frame.len", "Length", base.DEC))
F("v2_fbody", ProtoField.bytes("ferry.v2.frame.body", "Body"))
F("v2_push_id", ProtoField.uint32("ferry.v2.push_id", "Push id", base.DEC))
F("v2_largest", ProtoField.uint32("ferry.v2.ack.largest", "Largest",
	base.DEC))
F("v2_ack_delay", ProtoField.uint16("ferry.v2.ack.delay", "Ack delay (us)",
	base.DEC))
F("v2_first_range", ProtoField.uint16("ferry.v2.ack.first_range",
	"First range", base.DEC))
F("v2_ecn", ProtoField.bytes("ferry.v2.ack.ecn", "ECN counts"))
F("v2_gap", ProtoField.uint16("ferry.v2.ack.gap", "Gap", base.DEC))
F("v2_count", ProtoField.uint16("ferry.v2.ack.count", "Count", base.DEC))
F("v2_limit", ProtoField.uint32("ferry.v2.credit.limit", "Limit (bytes)",
	base.DEC))
F("v2_versions", ProtoField.uint16("ferry.v2.hello.versions", "Versions",
	base.HEX))
F("v2_hmode", ProtoField.uint8("ferry.v2.hello.mode", "Mode", base.DEC,
	modes))
F("v2_hrsvd", ProtoField.uint8("ferry.v2.hello.reserved", "Reserved",
	base.HEX))
F("v2_pubkey", ProtoField.bytes("ferry.v2.hello.public_key",
	"X25519 public key"))
F("v2_window", ProtoField.uint32("ferry.v2.params.window", "window",
	base.DEC))
F("v2_max_ack_delay", ProtoField.uint16("ferry.v2.params.max_ack_delay",
	"max_ack_delay (us)", base.DEC))
F("v2_replay", ProtoField.uint8("ferry.v2.params.replay_log2",
	"replay_log2", base.DEC))
F("v2_prsvd", ProtoField.uint8("ferry.v2.params.reserved", "Reserved",
	base.HEX))
F("v2_cookie_ts", ProtoField.uint32("ferry.v2.cookie.ts", "Timestamp",
	base.DEC))
F("v2_cookie_mac", ProtoField.bytes("ferry.v2.cookie.mac", "MAC"))
F("v2_pop", ProtoField.bytes("ferry.v2.pop", "Proof of possession"))
F("v2_crc", ProtoField.uint32("ferry.v2.crc", "CRC32C", base.HEX))
F("v2_tag", ProtoField.bytes("ferry.v2.tag", "Poly1305 tag"))
F("v2_sealed", ProtoField.bytes("ferry.v2.ciphertext", "Frames (aead)"))
F("v2_frame_count", ProtoField.uint16("ferry.v2.frame_count",
	"Frames in this datagram", base.DEC))
F("v2_pn_full", ProtoField.uint64("ferry.v2.pn_full",
	"Packet number (reconstructed)", base.DEC))
F("v2_pn_first", ProtoField.framenum("ferry.v2.pn_first_seen",
	"Packet number first seen in frame"))
F("v2_sess_mode", ProtoField.uint8("ferry.v2.session.mode",
	"Session mode (from ACCEPT)", base.DEC, modes))
F("v2_frag_unit", ProtoField.uint32("ferry.v2.session.frag_unit",
	"Session frag_unit (from both PARAMS)", base.DEC))
F("v2_hs_frame", ProtoField.framenum("ferry.v2.session.handshake",
	"Session accepted in frame"))
F("v2_retrans", ProtoField.framenum("ferry.v2.retransmission_of",
	"Frame first sent in frame"))
F("v2_range", ProtoField.string("ferry.v2.ack.range", "Acknowledged"))
E("v2_bad_frame", "ferry.v2.bad_frame", "Malformed v2 frame",
	expert.group.MALFORMED, expert.severity.ERROR)
E("v2_bad_header", "ferry.v2.bad_header", "Malformed v2 header",
	expert.group.MALFORMED, expert.severity.ERROR)
E("v2_bad_grid", "ferry.v2.bad_grid",
	"Fragment off the session's grid (docs/wire.md 5.6)",
	expert.group.MALFORMED, expert.severity.ERROR)
E("v2_bad_hs", "ferry.v2.bad_handshake",
	"Handshake frames break docs/wire.md 4.1", expert.group.MALFORMED,
	expert.severity.ERROR)
E("v2_pn_reused", "ferry.v2.pn_reused",
	"Packet number seen before on this CID (a replay or a duplicate)",
	expert.group.SEQUENCE, expert.severity.WARN)
E("v2_retrans", "ferry.v2.retransmission",
	"Frame sent again under a new packet number", expert.group.SEQUENCE,
	expert.severity.NOTE)

---------------------------------------------------------------------------
-- Per-capture state, filled on the first pass (pinfo.visited false) and
-- read on later ones.  Keys are CIDs as 16 hex digits.
---------------------------------------------------------------------------
local hs_client, sessions, pn_state, pn_of, first_of = {}, {}, {}, {}, {}
function W.v2_init()
	-- hs_client[client CID]: what its CONNECT said (max_frame, mode).
	-- sessions[either CID]: mode, frag_unit, path frame, ACCEPT's frame.
	-- pn_state[DCID]: largest pn and the pns seen; pn_of[frame]: the
	-- reconstructed pn and the frame that first had it.  first_of[key]:
	-- the frame that first carried a data or PUSH frame.
	hs_client, sessions, pn_state, pn_of, first_of = {}, {}, {}, {}, {}
end

local function cid_key(tvb, off) return tostring(tvb(off, 8):uint64():tohex()) end
local function trailer_len(mode) return mode == 0 and 4 or 16 end

-- The full pn closest to largest + 1 whose low 32 bits are pn32 (section
-- 2.1, QUIC's rule with a 32-bit window).  Lua numbers hold 2^53 exactly.
local function reconstruct(largest, pn32)
	local expected = largest + 1
	local cand = expected - expected % 4294967296 + pn32
	if cand <= expected - 2147483648 then
		cand = cand + 4294967296
	elseif cand > expected + 2147483648 and cand >= 4294967296 then
		cand = cand - 4294967296
	end
	return cand
end

local function track_pn(pinfo, dcid, pn32)
	if not pinfo then return nil end
	if not pinfo.visited then
		local st = pn_state[dcid]
		if not st then
			st = { largest = -1, seen = {} }
			pn_state[dcid] = st
		end
		local full = reconstruct(st.largest, pn32)
		local first = st.seen[full]
		if not first then st.seen[full] = pinfo.number end
		if full > st.largest then st.largest = full end
		pn_of[pinfo.number] = { full = full, first = first }
	end
	return pn_of[pinfo.number]
end

-- A data or PUSH frame: the first frame that carried the same one.
local function track_frame(pinfo, key, idx)
	if not pinfo then return nil end
	local slot = pinfo.number .. "#" .. idx
	if not pinfo.visited then
		local first = first_of[key]
		if first and first ~= pinfo.number then
			first_of[slot] = first
		elseif not first then
			first_of[key] = pinfo.number
		end
	end
	return first_of[slot]
end

---------------------------------------------------------------------------
-- Frame bodies
---------------------------------------------------------------------------
local function crc32c(tvb, off, len)
	local crc = W.crc_update(0xFFFFFFFF, tvb:raw(off, len))
	return bxor(crc, 0xFFFFFFFF) % 4294967296
end

-- A CRC32C trailer over [0, len - 4).
local function check_crc(tvb, tree)
	local n = tvb:len() - 4
	local item = tree:add(f.v2_crc, tvb(n, 4))
	local calc = crc32c(tvb, 0, n)
	item:add(f.csum_calc, calc):set_generated()
	if calc == tvb(n, 4):uint() then
		item:append_text(" [correct]")
		item:add(f.csum_status, 1):set_generated()
	else
		item:add(f.csum_status, 0):set_generated()
		item:add_proto_expert_info(ex.bad_csum, string.format(
			"CRC32C mismatch: datagram has %s, computed %s",
			W.hex32(tvb(n, 4):uint()), W.hex32(calc)))
	end
end

-- REQUEST, REQUEST_FRAG, RESPONSE, RESPONSE_FRAG: the message through
-- ferry_body.lua, on a tvb of the frame's body alone.  Every such frame
-- gets req_id, msg_len, frag_off and payload_len (generated where the
-- frame has no such field), so that a frame's fields line up.  ctx.sess
-- is the session, when the capture holds its handshake.
local function dissect_call(typ, flags, body, t, ctx)
	local req = typ == 0x08 or typ == 0x09
	local frag = typ == 0x09 or typ == 0x0B
	local o, msg_len, off = 4, nil, 0
	local req_id = body(0, 4):uint()
	t:add(f.req_id, body(0, 4))
	if req_id == 0 then
		t:add_proto_expert_info(ex.v2_bad_frame, "req_id is 0")
	end
	if req then t:add(f.method, body(4, 2)); o = 6 end
	if body:len() < o then return "" end
	local n
	if frag then
		if body:len() < o + 8 then
			t:add_proto_expert_info(ex.v2_bad_frame,
				"Fragment shorter than its fixed fields")
			return ""
		end
		t:add(f.msg_len, body(o, 4))
		t:add(f.frag_off, body(o + 4, 4))
		msg_len, off = body(o, 4):uint(), body(o + 4, 4):uint()
		o = o + 8
		n = body:len() - o
		if msg_len == 0 or msg_len > W.MAX_MSG or n == 0 or
		    off + n > msg_len then
			t:add_proto_expert_info(ex.v2_bad_frame,
				"Fragment empty, past msg_len, or msg_len out of 1..2^30")
		elseif ctx.sess and (off % ctx.sess.frag_unit ~= 0 or
		    n ~= math.min(ctx.sess.frag_unit, msg_len - off)) then
			t:add_proto_expert_info(ex.v2_bad_grid, string.format(
				"offset %d and %d bytes: not on the grid of %d", off, n,
				ctx.sess.frag_unit))
		end
	else
		n = body:len() - o
		msg_len = n
		t:add(f.msg_len, msg_len):set_generated()
		t:add(f.frag_off, 0):set_generated()
	end
	t:add(f.payload_len, n):set_generated()
	if frag then
		t:add(f.fragmented, true):set_generated()
		t:add(f.last_frag, off + n >= msg_len):set_generated()
	end
	local key = string.format("%s/%s/%d/%d", ctx.dcid or "?",
		req and "q" or "r", req_id, off)
	local first = track_frame(ctx.pinfo, key, ctx.idx)
	local s = string.format(" req=%d len=%d", req_id, msg_len)
	if frag then s = s .. string.format(" [%d+%d]", off, n) end
	if first then
		t:add(f.v2_retrans, first):set_generated()
		t:add_proto_expert_info(ex.v2_retrans)
		s = s .. " (again)"
	end
	if typ == 0x0A and band(flags, 1) ~= 0 then
		if band(flags, 2) ~= 0 then
			t:add_proto_expert_info(ex.bad_flags,
				"RESPONSE with both ERR and TRACE")
		end
		return s .. W.dissect_error_body(body, o, t)
	end
	local v1flags = 0
	if band(flags, 2) ~= 0 then v1flags = v1flags + FF_TRACE end
	if req and band(flags, 1) ~= 0 then v1flags = v1flags + FF_CAPS end
	if n > 0 then
		s = s .. W.dissect_message(body(o, n):tvb(), 0, req and FT.REQUEST or
			FT.RESPONSE, v1flags, msg_len, off, t)
	elseif v1flags == 0 then
		t:add(f.app_len, 0):set_generated()
	end
	return s
end

local function dissect_ack(flags, body, t)
	t:add(f.v2_largest, body(0, 4))
	t:add(f.v2_ack_delay, body(4, 2))
	t:add(f.v2_first_range, body(6, 2))
	local o = 8
	if band(flags, 1) ~= 0 then
		if body:len() < 20 then
			t:add_proto_expert_info(ex.v2_bad_frame,
				"ACK with ECN shorter than 20 bytes")
			return ""
		end
		t:add(f.v2_ecn, body(8, 12))
		o = 20
	end
	if (body:len() - o) % 4 ~= 0 or (body:len() - o) / 4 > 32 then
		t:add_proto_expert_info(ex.v2_bad_frame,
			"ACK ranges not whole or more than 32")
		return ""
	end
	-- The ranges, walking down from largest (low 32 bits: what the
	-- sender of the acknowledged datagrams reconstructs).
	local hi = body(0, 4):uint()
	local lo = hi - body(6, 2):uint()
	local ranges = { lo == hi and tostring(hi) or (lo .. "-" .. hi) }
	t:add(f.v2_range, ranges[1]):set_generated()
	while o < body:len() do
		local g = t:add(f.v2_gap, body(o, 2))
		t:add(f.v2_count, body(o + 2, 2))
		local gap, count = body(o, 2):uint(), body(o + 2, 2):uint()
		if gap == 0 or count == 0 then
			g:add_proto_expert_info(ex.v2_bad_frame, "Gap or count of 0")
		end
		hi = lo - gap - 1
		lo = hi - count + 1
		if lo < 0 then
			g:add_proto_expert_info(ex.v2_bad_frame, "Range below pn 0")
		end
		local r = lo == hi and tostring(hi) or (lo .. "-" .. hi)
		t:add(f.v2_range, r):set_generated()
		ranges[#ranges + 1] = r
		o = o + 4
	end
	return " " .. table.concat(ranges, ",")
end

local function dissect_params(body, t, ctx)
	t:add(f.p_max_msg, body(0, 4))
	t:add(f.v2_window, body(4, 4))
	t:add(f.p_max_frame, body(8, 2))
	t:add(f.p_slots, body(10, 2))
	t:add(f.v2_max_ack_delay, body(12, 2))
	t:add(f.v2_replay, body(14, 1))
	t:add(f.v2_prsvd, body(15, 1))
	local mm, w = body(0, 4):uint(), body(4, 4):uint()
	local mf, r = body(8, 2):uint(), body(14, 1):uint()
	ctx.max_frame = mf
	if mm < 1 or mm > W.MAX_MSG or w < 4096 or w > W.MAX_MSG or
	    mf < 1200 or mf > W.MAX_FRAME or body(10, 2):uint() == 0 or
	    r < 6 or r > 16 or body(15, 1):uint() ~= 0 then
		t:add_proto_expert_info(ex.v2_bad_frame, "PARAMS out of range")
	end
	return string.format(" max_frame=%d", mf)
end

local function dissect_hello(body, t, ctx)
	local vt = t:add(f.v2_versions, body(0, 2))
	local mt = t:add(f.v2_hmode, body(2, 1))
	t:add(f.v2_hrsvd, body(3, 1))
	t:add(f.v2_pubkey, body(4, 32))
	local v, m = body(0, 2):uint(), body(2, 1):uint()
	ctx.mode, ctx.versions = m, v
	if v == 0 or body(3, 1):uint() ~= 0 then
		vt:add_proto_expert_info(ex.v2_bad_frame,
			"HELLO with no version or reserved byte not 0")
	end
	if m > 2 then
		mt:add_proto_expert_info(ex.v2_bad_frame, "HELLO mode above 2")
	end
	return string.format(" v=0x%04x %s", v, modes[m] or "?")
end

-- The body of one frame; returns Info text.
local function dissect_frame_body(typ, flags, body, t, ctx)
	if typ >= 0x08 and typ <= 0x0B then
		return dissect_call(typ, flags, body, t, ctx)
	elseif typ == 0x02 then
		return dissect_ack(flags, body, t)
	elseif typ == 0x03 then
		t:add(f.v2_limit, body(0, 4))
		return " " .. body(0, 4):uint()
	elseif typ == 0x04 then
		local s = W.dissect_error_body(body, 0, t, 0)
		if band(flags, 1) ~= 0 then s = " REPLY" .. s end
		return s
	elseif typ == 0x28 then
		return W.dissect_error_body(body, 0, t)
	elseif typ == 0x0C then
		if body:len() < 4 then
			t:add_proto_expert_info(ex.v2_bad_frame, "PUSH without push_id")
			return ""
		end
		local it = t:add(f.v2_push_id, body(0, 4))
		local id = body(0, 4):uint()
		if id == 0 then
			it:add_proto_expert_info(ex.v2_bad_frame, "push_id is 0")
		end
		local first = track_frame(ctx.pinfo, string.format("%s/p/%d",
			ctx.dcid or "?", id), ctx.idx)
		if first then
			t:add(f.v2_retrans, first):set_generated()
			t:add_proto_expert_info(ex.v2_retrans)
		end
		return string.format(" id=%d%s", id, first and " (again)" or "") ..
			W.dissect_push(body, 4, t)
	elseif typ == 0x20 then
		return dissect_hello(body, t, ctx)
	elseif typ == 0x21 then
		return dissect_params(body, t, ctx)
	elseif typ == 0x22 then
		local ft = t:add(f.features, body(0, 4))
		ft:add(f.feat_iou, body(0, 4))
		ft:add(f.feat_trace, body(0, 4))
		ft:add(f.feat_aesgcm, body(0, 4))
	elseif typ == 0x23 then
		t:add(f.v2_cookie_ts, body(0, 4))
		t:add(f.v2_cookie_mac, body(4, 16))
		return " ts=" .. body(0, 4):uint()
	elseif typ == 0x24 then
		t:add(f.token, body())
		return " " .. body:len() .. " bytes"
	elseif typ == 0x25 then
		t:add(f.v2_pop, body())
	elseif typ == 0x26 then
		t:add(f.traceparent, body())
	elseif typ == 0x27 then
		t:add(f.tracestate, body())
	end
	return ""
end

-- Frames from off to stop; where is S or H.  Returns Info text, the frame
-- count, and fills ctx.types with the frame types in order.
local function dissect_frames(tvb, off, stop, where, tree, ctx)
	local names = {}
	ctx.types = {}
	while off < stop do
		if stop - off < 4 then
			tree:add(f.v2_frame, tvb(off, stop - off))
				:add_proto_expert_info(ex.v2_bad_frame,
					"Frame header runs past the frames")
			break
		end
		local typ, flags = tvb(off, 1):uint(), tvb(off + 1, 1):uint()
		local len = tvb(off + 2, 2):uint()
		local known = frame_types[typ]
		local name = known and known[1] or string.format("0x%02x", typ)
		local t = tree:add(f.v2_frame, tvb(off, math.min(4 + len,
			stop - off)))
		t:set_text(name .. " (" .. len .. " bytes)")
		t:add(f.v2_ftype, tvb(off, 1))
		local fi = t:add(f.v2_fflags, tvb(off + 1, 1))
		t:add(f.v2_flen, tvb(off + 2, 2))
		if 4 + len > stop - off then
			t:add_proto_expert_info(ex.v2_bad_frame, string.format(
				"Frame of %d bytes runs %d bytes past the trailer's start",
				4 + len, 4 + len - (stop - off)))
			names[#names + 1] = name .. " (cut)"
			break
		end
		ctx.types[#ctx.types + 1] = typ
		ctx.idx = #ctx.types
		local s = ""
		if typ >= 0x80 then
			if len > 0 then t:add(f.v2_fbody, tvb(off + 4, len)) end
		elseif not known or band(known[2], where) == 0 then
			t:add_proto_expert_info(ex.v2_bad_frame, not known and
				"Unknown core or critical frame type" or
				"Frame type not allowed in this datagram")
		elseif band(flags, 0xff - (frame_flags[typ] or 0)) ~= 0 then
			fi:add_proto_expert_info(ex.bad_flags)
		elseif fixed_len[typ] and fixed_len[typ] ~= len then
			t:add_proto_expert_info(ex.v2_bad_frame, "Wrong length")
		elseif min_len[typ] and len < min_len[typ] then
			t:add_proto_expert_info(ex.v2_bad_frame, "Body too short")
		elseif len > 0 or typ == 0x08 or typ == 0x0A then
			if len > 0 then
				s = dissect_frame_body(typ, flags, tvb(off + 4, len):tvb(),
					t, ctx)
			end
		end
		if typ ~= 0x00 then names[#names + 1] = name .. s end
		off = off + 4 + len
	end
	return table.concat(names, ", "), #ctx.types
end

-- Section 4.1's table: which frames each handshake message carries, once
-- each, in which order (PADDING and ignorable types anywhere).
local function check_handshake(typ, ctx, tree)
	local seen, order, bad = {}, {}, nil
	for _, ft in ipairs(ctx.types) do
		if ft ~= 0x00 and ft < 0x80 then
			if seen[ft] then bad = "a frame appears twice" end
			seen[ft] = true
			order[#order + 1] = ft
		end
	end
	local allowed
	if typ == 0 then
		allowed = { [0x20] = 1, [0x21] = 1, [0x22] = 1, [0x23] = 1,
			[0x24] = 1, [0x25] = 1, [0x26] = 1, [0x27] = 1 }
		if not seen[0x20] or not seen[0x21] then
			bad = "CONNECT without HELLO or PARAMS"
		elseif order[1] ~= 0x20 then
			bad = "HELLO not first"
		elseif seen[0x23] and order[2] ~= 0x23 then
			bad = "COOKIE not right after HELLO"
		elseif (seen[0x24] or false) ~= (seen[0x25] or false) then
			bad = "TOKEN without POP or POP without TOKEN"
		elseif seen[0x25] and order[#order] ~= 0x25 then
			bad = "POP not the last frame before PADDING"
		end
	elseif typ == 1 then
		allowed = { [0x23] = 1 }
		if not seen[0x23] then bad = "RETRY without COOKIE" end
	elseif typ == 2 then
		allowed = { [0x20] = 1, [0x21] = 1, [0x22] = 1 }
		if not seen[0x20] or not seen[0x21] then
			bad = "ACCEPT without HELLO or PARAMS"
		elseif order[1] ~= 0x20 then
			bad = "HELLO not first"
		elseif ctx.versions and band(ctx.versions, ctx.versions - 1) ~= 0 then
			bad = "ACCEPT's HELLO names more than one version"
		end
	else
		allowed = { [0x28] = 1 }
		if not seen[0x28] then bad = "REFUSE without ERROR" end
	end
	for ft in pairs(seen) do
		if not allowed[ft] then
			bad = (frame_names[ft] or "a frame") .. " not allowed in " ..
				long_types[typ]
		end
	end
	if bad then tree:add_proto_expert_info(ex.v2_bad_hs, bad) end
end

-- CONNECT and ACCEPT name a session: its CIDs, mode and grid.
local function learn_session(pinfo, typ, tvb, ctx)
	if not pinfo or pinfo.visited then return end
	if typ == 0 then
		hs_client[cid_key(tvb, 10)] = { max_frame = ctx.max_frame,
			mode = ctx.mode }
	elseif typ == 2 and ctx.mode and ctx.max_frame then
		local client, server = cid_key(tvb, 2), cid_key(tvb, 10)
		local c = hs_client[client]
		local path = ctx.max_frame
		if c and c.max_frame and c.max_frame < path then
			path = c.max_frame
		end
		local s = { mode = ctx.mode, path = path, frame = pinfo.number,
			frag_unit = path - 13 - trailer_len(ctx.mode) - 18 - 24,
			grid = c ~= nil }
		sessions[client], sessions[server] = s, s
	end
end

function W.dissect_v2_short(tvb, pinfo, tree)
	tree:append_text(", v2 short header")
	local b = tvb(0, 1):uint()
	local mode = band(b, 3)
	local tlen = trailer_len(mode)
	local ft = tree:add(f.v2_first, tvb(0, 1))
	ft:add(f.v2_key_phase, tvb(0, 1))
	ft:add(f.v2_short_rsvd, tvb(0, 1))
	ft:add(f.v2_mode, tvb(0, 1))
	if tvb:len() < 13 + 4 + tlen then
		tree:add_proto_expert_info(ex.truncated, string.format(
			"%d bytes: shorter than header, one frame header and trailer " ..
			"(%d)", tvb:len(), 13 + 4 + tlen))
		return "v2 truncated"
	end
	if mode == 3 then
		ft:add_proto_expert_info(ex.v2_bad_header, "Mode 11 is invalid")
		return "v2 bad mode"
	end
	local dcid = cid_key(tvb, 1)
	tree:add(f.v2_dcid, tvb(1, 8))
	tree:add(f.v2_cid, tvb(1, 8)):set_hidden()
	local pt = tree:add(f.v2_pn, tvb(9, 4))
	local pn = track_pn(pinfo, dcid, tvb(9, 4):uint())
	if pn then
		pt:add(f.v2_pn_full, UInt64.new(pn.full % 4294967296,
			math.floor(pn.full / 4294967296))):set_generated()
		if pn.first then
			pt:add(f.v2_pn_first, pn.first):set_generated()
			pt:add_proto_expert_info(ex.v2_pn_reused)
		end
	end
	local sess = sessions[dcid]
	if sess then
		tree:add(f.v2_hs_frame, sess.frame):set_generated()
		tree:add(f.v2_sess_mode, sess.mode):set_generated()
		if sess.grid then
			tree:add(f.v2_frag_unit, sess.frag_unit):set_generated()
		end
		if sess.mode ~= mode then
			ft:add_proto_expert_info(ex.v2_bad_header, string.format(
				"Mode %s, not the session's (%s)", modes[mode],
				modes[sess.mode]))
		end
		if not sess.grid then sess = nil end
	end
	local stop = tvb:len() - tlen
	local info = string.format("v2 %s dcid=%s pn=%d", modes[mode], dcid,
		tvb(9, 4):uint())
	if pn and pn.first then info = info .. " (pn seen before)" end
	if mode == 2 then
		tree:add(f.v2_sealed, tvb(13, stop - 13))
			:add_proto_expert_info(ex.v2_sealed)
	else
		local ctx = { pinfo = pinfo, dcid = dcid, sess = sess }
		local s, n = dissect_frames(tvb, 13, stop, S, tree, ctx)
		tree:add(f.v2_frame_count, n):set_generated()
		info = info .. ": " .. s
	end
	if mode == 0 then
		check_crc(tvb, tree)
	else
		tree:add(f.v2_tag, tvb(stop, 16))
	end
	return info
end

function W.dissect_v2_long(tvb, pinfo, tree)
	tree:append_text(", v2 long header")
	local b = tvb(0, 1):uint()
	local typ = band(b, 0x0f)
	local ft = tree:add(f.v2_first, tvb(0, 1))
	ft:add(f.v2_long_rsvd, tvb(0, 1))
	ft:add(f.v2_long_type, tvb(0, 1))
	if tvb:len() < 2 then
		tree:add_proto_expert_info(ex.truncated)
		return "v2 truncated"
	end
	tree:add(f.v2_version, tvb(1, 1))
	if tvb(1, 1):uint() ~= 2 then
		tree:add_proto_expert_info(ex.bad_version, "Version not 2")
		return "v2 bad version"
	end
	if band(b, 0x30) ~= 0 then
		ft:add_proto_expert_info(ex.v2_bad_header, "Reserved bits set")
	end
	if typ > 3 then
		ft:add_proto_expert_info(ex.bad_type, "Long header type not 0..3")
		return "v2 bad type"
	end
	local tlen = typ == 2 and 16 or 4
	if tvb:len() < 18 + 4 + tlen then
		tree:add_proto_expert_info(ex.truncated, string.format(
			"%d bytes: shorter than header, one frame header and trailer " ..
			"(%d)", tvb:len(), 18 + 4 + tlen))
		return "v2 truncated"
	end
	tree:add(f.v2_dcid, tvb(2, 8))
	tree:add(f.v2_scid, tvb(10, 8))
	tree:add(f.v2_cid, tvb(2, 8)):set_hidden()
	tree:add(f.v2_cid, tvb(10, 8)):set_hidden()
	local zero_d = tvb(2, 8):uint64() == UInt64(0)
	local zero_s = tvb(10, 8):uint64() == UInt64(0)
	-- CONNECT: DCID 0, SCID with nonzero low 32 bits; RETRY and REFUSE:
	-- SCID 0; ACCEPT: both set.
	if zero_d ~= (typ == 0) or zero_s ~= (typ == 1 or typ == 3) or
	    (typ == 0 and tvb(14, 4):uint() == 0) then
		tree:add_proto_expert_info(ex.v2_bad_header,
			"CIDs break the rules of docs/wire.md section 2.2")
	end
	local stop = tvb:len() - tlen
	local ctx = { pinfo = pinfo }
	local s, n = dissect_frames(tvb, 18, stop, H, tree, ctx)
	tree:add(f.v2_frame_count, n):set_generated()
	check_handshake(typ, ctx, tree)
	local info = "v2 " .. long_types[typ] .. ": " .. s
	if typ == 2 then
		tree:add(f.v2_tag, tvb(stop, 16))
	else
		check_crc(tvb, tree)
	end
	learn_session(pinfo, typ, tvb, ctx)
	return info
end

-- For ferry.lua's heuristic: a v2 datagram of a session whose handshake
-- the capture showed (its CONNECT came in a v1 envelope, which the v1
-- heuristic takes): a long header to a client CID that sent a CONNECT, or
-- a short header to either CID of an accepted session.  A bare CONNECT,
-- or a session whose handshake was not captured, needs the port.
function W.v2_known(tvb)
	local len = tvb:len()
	if len < 13 then return false end
	local b = tvb(0, 1):uint()
	if b >= 0xC0 then
		return len >= 18 and tvb(1, 1):uint() == 2 and
			hs_client[cid_key(tvb, 2)] ~= nil
	end
	return b >= 0x80 and sessions[cid_key(tvb, 1)] ~= nil
end
