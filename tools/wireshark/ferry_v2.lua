-- ferry_v2.lua: wire v2 (docs/wire-v2.md) for ferry.lua, which loads it
-- from its own folder and calls W.dissect_v2_short for a first byte
-- 0x80..0xBF and W.dissect_v2_long for 0xC0..0xFF; a v1 CONNECT's WIRE2
-- TLV (0x86, the envelope of section 4.2) holds a long-header CONNECT.
--
-- Headers, frames and the CRC32C trailer of `none` mode (and of CONNECT,
-- RETRY and REFUSE) are checked; a Poly1305 tag is shown, not checked (it
-- needs the session's keys), and `aead` frames are shown as ciphertext.
-- Message bodies (trace block, token table, attribute block, error body,
-- PUSH records) keep v1's layouts and go through ferry_body.lua.

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
F("v2_cookie_ts", ProtoField.uint32("ferry.v2.cookie.ts", "Timestamp",
	base.DEC))
F("v2_cookie_mac", ProtoField.bytes("ferry.v2.cookie.mac", "MAC"))
F("v2_pop", ProtoField.bytes("ferry.v2.pop", "Proof of possession"))
F("v2_crc", ProtoField.uint32("ferry.v2.crc", "CRC32C", base.HEX))
F("v2_tag", ProtoField.bytes("ferry.v2.tag", "Poly1305 tag"))
F("v2_sealed", ProtoField.bytes("ferry.v2.ciphertext", "Frames (aead)"))
E("v2_bad_frame", "ferry.v2.bad_frame", "Malformed v2 frame",
	expert.group.MALFORMED, expert.severity.ERROR)
E("v2_bad_header", "ferry.v2.bad_header", "Malformed v2 header",
	expert.group.MALFORMED, expert.severity.ERROR)

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
-- ferry_body.lua, on a tvb of the frame's body alone.
local function dissect_call(typ, flags, body, t)
	local req = typ == 0x08 or typ == 0x09
	local frag = typ == 0x09 or typ == 0x0B
	local o, msg_len, off = 4, nil, 0
	t:add(f.req_id, body(0, 4))
	if body(0, 4):uint() == 0 then
		t:add_proto_expert_info(ex.v2_bad_frame, "req_id is 0")
	end
	if req then t:add(f.method, body(4, 2)); o = 6 end
	if frag then
		t:add(f.msg_len, body(o, 4))
		t:add(f.frag_off, body(o + 4, 4))
		msg_len, off = body(o, 4):uint(), body(o + 4, 4):uint()
		o = o + 8
		if msg_len == 0 or msg_len > W.MAX_MSG or body:len() == o or
		    off + body:len() - o > msg_len then
			t:add_proto_expert_info(ex.v2_bad_frame,
				"Fragment empty, past msg_len, or msg_len out of 1..2^30")
		end
	else
		msg_len = body:len() - o
	end
	local s = string.format(" req=%d len=%d", body(0, 4):uint(), msg_len)
	if typ == 0x0A and band(flags, 1) ~= 0 then
		return s .. W.dissect_error_body(body, o, t)
	end
	local v1flags = 0
	if band(flags, 2) ~= 0 then v1flags = v1flags + FF_TRACE end
	if req and band(flags, 1) ~= 0 then v1flags = v1flags + FF_CAPS end
	local mtvb = body(o, body:len() - o):tvb()
	if body:len() == o then mtvb = nil end
	if mtvb then
		s = s .. W.dissect_message(mtvb, 0, req and FT.REQUEST or
			FT.RESPONSE, v1flags, msg_len, off, t)
	end
	return s
end

local function dissect_ack(flags, body, t)
	t:add(f.v2_largest, body(0, 4))
	t:add(f.v2_ack_delay, body(4, 2))
	t:add(f.v2_first_range, body(6, 2))
	local o = 8
	if band(flags, 1) ~= 0 then
		t:add(f.v2_ecn, body(8, 12))
		o = 20
	end
	if (body:len() - o) % 4 ~= 0 or (body:len() - o) / 4 > 32 then
		t:add_proto_expert_info(ex.v2_bad_frame,
			"ACK ranges not whole or more than 32")
		return ""
	end
	while o < body:len() do
		local g = t:add(f.v2_gap, body(o, 2))
		local c = t:add(f.v2_count, body(o + 2, 2))
		if body(o, 2):uint() == 0 or body(o + 2, 2):uint() == 0 then
			g:add_proto_expert_info(ex.v2_bad_frame, "Gap or count of 0")
		end
		o = o + 4
	end
	return " largest=" .. body(0, 4):uint()
end

local function dissect_params(body, t)
	t:add(f.p_max_msg, body(0, 4))
	t:add(f.v2_window, body(4, 4))
	t:add(f.p_max_frame, body(8, 2))
	t:add(f.p_slots, body(10, 2))
	t:add(f.v2_max_ack_delay, body(12, 2))
	t:add(f.v2_replay, body(14, 1))
	t:add(f.p_rsvd, body(15, 1))
	local mm, w = body(0, 4):uint(), body(4, 4):uint()
	local mf, r = body(8, 2):uint(), body(14, 1):uint()
	if mm < 1 or mm > W.MAX_MSG or w < 4096 or w > W.MAX_MSG or
	    mf < 1200 or mf > W.MAX_FRAME or body(10, 2):uint() == 0 or
	    r < 6 or r > 16 or body(15, 1):uint() ~= 0 then
		t:add_proto_expert_info(ex.v2_bad_frame, "PARAMS out of range")
	end
end

-- The body of one frame; returns Info text.
local function dissect_frame_body(typ, flags, body, t)
	if typ >= 0x08 and typ <= 0x0B then
		return dissect_call(typ, flags, body, t)
	elseif typ == 0x02 then
		return dissect_ack(flags, body, t)
	elseif typ == 0x03 then
		t:add(f.v2_limit, body(0, 4))
	elseif typ == 0x04 or typ == 0x28 then
		return W.dissect_error_body(body, 0, t)
	elseif typ == 0x0C then
		t:add(f.v2_push_id, body(0, 4))
		return W.dissect_push(body, 4, t)
	elseif typ == 0x20 then
		t:add(f.v2_versions, body(0, 2))
		t:add(f.v2_hmode, body(2, 1))
		t:add(f.v2_hrsvd, body(3, 1))
		t:add(f.v2_pubkey, body(4, 32))
	elseif typ == 0x21 then
		dissect_params(body, t)
	elseif typ == 0x22 then
		local ft = t:add(f.features, body(0, 4))
		ft:add(f.feat_iou, body(0, 4))
		ft:add(f.feat_trace, body(0, 4))
	elseif typ == 0x23 then
		t:add(f.v2_cookie_ts, body(0, 4))
		t:add(f.v2_cookie_mac, body(4, 16))
	elseif typ == 0x24 then
		t:add(f.token, body())
	elseif typ == 0x25 then
		t:add(f.v2_pop, body())
	elseif typ == 0x26 then
		t:add(f.traceparent, body())
	elseif typ == 0x27 then
		t:add(f.tracestate, body())
	end
	return ""
end

-- Frames from off to stop; where is S or H.  Returns Info text.
local function dissect_frames(tvb, off, stop, where, tree)
	local names = {}
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
			t:add_proto_expert_info(ex.v2_bad_frame,
				"Frame runs past the frames")
			break
		end
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
		elseif len > 0 then
			s = dissect_frame_body(typ, flags, tvb(off + 4, len):tvb(), t)
		end
		names[#names + 1] = name .. s
		off = off + 4 + len
	end
	return table.concat(names, ", ")
end

function W.dissect_v2_short(tvb, pinfo, tree)
	tree:append_text(", v2 short header")
	local b = tvb(0, 1):uint()
	local mode = band(b, 3)
	local tlen = mode == 0 and 4 or 16
	local ft = tree:add(f.v2_first, tvb(0, 1))
	ft:add(f.v2_key_phase, tvb(0, 1))
	ft:add(f.v2_short_rsvd, tvb(0, 1))
	ft:add(f.v2_mode, tvb(0, 1))
	if tvb:len() < 13 + 4 + tlen then
		tree:add_proto_expert_info(ex.truncated,
			"Shorter than header, one frame header and trailer")
		return "v2 truncated"
	end
	if mode == 3 then
		ft:add_proto_expert_info(ex.v2_bad_header, "Mode 11 is invalid")
		return "v2 bad mode"
	end
	tree:add(f.v2_dcid, tvb(1, 8))
	tree:add(f.v2_cid, tvb(1, 8)):set_hidden()
	tree:add(f.v2_pn, tvb(9, 4))
	local stop = tvb:len() - tlen
	local info = string.format("v2 %s dcid=%s pn=%d", modes[mode],
		tostring(tvb(1, 8):uint64():tohex()), tvb(9, 4):uint())
	if mode == 2 then
		tree:add(f.v2_sealed, tvb(13, stop - 13))
			:add_proto_expert_info(ex.v2_sealed)
	else
		info = info .. ": " .. dissect_frames(tvb, 13, stop, S, tree)
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
		tree:add_proto_expert_info(ex.truncated,
			"Shorter than header, one frame header and trailer")
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
			"CIDs break the rules of docs/wire-v2.md section 2.2")
	end
	local stop = tvb:len() - tlen
	local info = "v2 " .. long_types[typ] .. ": " ..
		dissect_frames(tvb, 18, stop, H, tree)
	if typ == 2 then
		tree:add(f.v2_tag, tvb(stop, 16))
	else
		check_crc(tvb, tree)
	end
	return info
end
