-- ferry.lua: a Wireshark dissector for ferry's wire (docs/wire.md, v1).
--
-- Load it for one run:
--   tshark -X lua_script:tools/wireshark/ferry.lua -d udp.port==31850,ferry -r cap.pcap
-- or copy it into Wireshark's personal Lua plugins folder.  The UDP port
-- is a preference (ferry.udp_port, default 31850, ferry-bench's); `-d
-- udp.port==N,ferry` adds any other.  A heuristic on UDP also takes
-- datagrams that start with a v1 header ("FR", version 1, a known type),
-- which includes a v2 CONNECT in its v1 envelope, and then the v2
-- datagrams of the sessions whose handshake it saw (ferry_v2.lua).
--
-- Every rule of docs/wire.md section 3 that a frame alone can break is
-- checked, and a broken one is reported as expert info (group Malformed or
-- Checksum, severity Error) under its own name (ferry.bad_magic,
-- ferry.truncated, ...), so `tshark -Y ferry.bad_tlv` finds them.  The
-- rules that need a receiver's configuration (max_msg, max_frame) are not
-- checked, nor are Poly1305 tags (they need the session's keys).
--
-- The datagram's first byte chooses the dissector, as docs/wire.md
-- (section 1) lays out: 0x46 is a v1 frame, 0x80..0xBF a v2 short header,
-- 0xC0..0xFF a v2 long header; anything else is reported as bad magic.
-- The v2 forms are dissected by ferry_v2.lua, and the frame bodies both
-- wires share by ferry_body.lua: keep the three files in one folder.

local ferry = Proto("ferry", "ferry RPC transport")

-- Bit operations: bit32 in Wireshark's Lua 5.2; Lua 5.3 and later have
-- operators, which 5.2 cannot parse, so they are compiled from a string.
local band, bor, bxor, rshift
if bit32 then
	band, bor, bxor, rshift = bit32.band, bit32.bor, bit32.bxor, bit32.rshift
else
	band, bor, bxor, rshift = load([[
		return function(a, b) return a & b end,
		       function(a, b) return a | b end,
		       function(a, b) return a ~ b end,
		       function(a, n) return a >> n end]])()
end

local HDR_LEN = 44
local MAX_FRAME = 65507
local MAX_MSG = 1073741824 -- 2^30

local FT = { CONNECT = 1, ACCEPT = 2, REQUEST = 3, RESPONSE = 4, CREDIT = 5,
	CLOSE = 6, ERROR = 7, PING = 8, PUSH = 9 }
local ft_names = { [1] = "CONNECT", [2] = "ACCEPT", [3] = "REQUEST",
	[4] = "RESPONSE", [5] = "CREDIT", [6] = "CLOSE", [7] = "ERROR",
	[8] = "PING", [9] = "PUSH" }

local FF_REPLY, FF_CSUM, FF_ERR, FF_CAPS, FF_TRACE = 0x1, 0x2, 0x4, 0x8, 0x10
-- The flags each type may carry (docs/wire.md section 3).
local ff_allowed = { [1] = FF_CSUM, [2] = FF_CSUM,
	[3] = bor(FF_CSUM, bor(FF_CAPS, FF_TRACE)),
	[4] = bor(FF_CSUM, bor(FF_ERR, FF_TRACE)),
	[5] = FF_CSUM, [6] = bor(FF_CSUM, FF_REPLY), [7] = FF_CSUM,
	[8] = bor(FF_CSUM, FF_REPLY), [9] = FF_CSUM }

local TLV_PARAMS, TLV_TRACEPARENT, TLV_TRACESTATE = 0x81, 0x02, 0x03
local TLV_TOKEN, TLV_FEATURES = 0x84, 0x05
local tlv_names = { [0x81] = "PARAMS", [0x02] = "TRACEPARENT",
	[0x03] = "TRACESTATE", [0x84] = "TOKEN", [0x05] = "FEATURES",
	[0x86] = "WIRE2" }
-- Exact lengths, or {lo, hi}.
local tlv_len = { [0x81] = { 16, 16 }, [0x02] = { 55, 55 },
	[0x03] = { 0, 512 }, [0x84] = { 1, 65535 }, [0x05] = { 4, 4 },
	[0x86] = { 1, 65535 } }

-- Error codes: ferry's own (include/ferry/error.h, token.h) and the Linux
-- errno values v1 sends.
local error_codes = {
	[5] = "EIO", [22] = "EINVAL", [24] = "EMFILE", [90] = "EMSGSIZE",
	[93] = "EPROTONOSUPPORT", [95] = "EOPNOTSUPP", [104] = "ECONNRESET",
	[110] = "ETIMEDOUT", [125] = "ECANCELED",
	[4096] = "FERRY_EREJECTED", [4097] = "FERRY_ENOMETHOD",
	[4098] = "FERRY_EVERSION", [4099] = "FERRY_EPROTO",
	[4100] = "FERRY_ECAPS", [4101] = "FERRY_EIOU",
	[4352] = "FERRY_TOKEN_EMALFORMED", [4353] = "FERRY_TOKEN_EVERSION",
	[4354] = "FERRY_TOKEN_EUNKNOWNKEY", [4355] = "FERRY_TOKEN_EKEYRETIRED",
	[4356] = "FERRY_TOKEN_EAUTH", [4357] = "FERRY_TOKEN_EEXPIRED",
	[4358] = "FERRY_TOKEN_ENOTYET", [4359] = "FERRY_TOKEN_EWRONGTYPE",
	[4360] = "FERRY_TOKEN_EAUDIENCE", [4363] = "FERRY_TOKEN_EMISSING",
	[4364] = "FERRY_TOKEN_ECHANNEL", [4365] = "FERRY_TOKEN_ETTL",
	[4366] = "FERRY_TOKEN_EENTRYPOINT", [4367] = "FERRY_TOKEN_ESESSIONS",
}
local push_codes = { [0] = "resolved" }
for k, v in pairs(error_codes) do push_codes[k] = v end
local cap_kinds = { [0] = "token", [1] = "IOU" }
local attr_types = { [1] = "string", [2] = "int64", [3] = "bool",
	[4] = "double" }

---------------------------------------------------------------------------
-- Fields
---------------------------------------------------------------------------
local f = {}
local function F(key, pf) f[key] = pf end

-- The header (docs/wire.md section 2).
F("magic", ProtoField.uint16("ferry.magic", "Magic", base.HEX))
F("version", ProtoField.uint8("ferry.version", "Version", base.DEC))
F("type", ProtoField.uint8("ferry.type", "Type", base.DEC, ft_names))
F("flags", ProtoField.uint16("ferry.flags", "Flags", base.HEX))
F("ff_reply", ProtoField.bool("ferry.flags.reply", "REPLY", 16, nil, FF_REPLY))
F("ff_csum", ProtoField.bool("ferry.flags.csum", "CSUM", 16, nil, FF_CSUM))
F("ff_err", ProtoField.bool("ferry.flags.err", "ERR", 16, nil, FF_ERR))
F("ff_caps", ProtoField.bool("ferry.flags.caps", "CAPS", 16, nil, FF_CAPS))
F("ff_trace", ProtoField.bool("ferry.flags.trace", "TRACE", 16, nil, FF_TRACE))
F("ff_rsvd", ProtoField.uint16("ferry.flags.reserved", "Reserved", base.HEX,
	nil, 0xffe0))
F("method", ProtoField.uint16("ferry.method", "Method", base.DEC))
F("dst_sess", ProtoField.uint32("ferry.dst_sess", "Destination session",
	base.HEX))
F("src_sess", ProtoField.uint32("ferry.src_sess", "Source session",
	base.HEX))
F("sess_gen", ProtoField.uint32("ferry.sess.generation", "Generation",
	base.DEC, nil, 0xffff0000))
F("sess_index", ProtoField.uint32("ferry.sess.index", "Index", base.DEC,
	nil, 0x0000ffff))
F("session", ProtoField.uint32("ferry.session", "Session (either)",
	base.HEX))
F("seq", ProtoField.uint32("ferry.seq", "Sequence number", base.DEC))
F("ack", ProtoField.uint32("ferry.ack", "Acknowledgement", base.DEC))
F("credit", ProtoField.uint32("ferry.credit", "Credit", base.DEC))
F("req_id", ProtoField.uint32("ferry.req_id", "Request id", base.DEC))
F("msg_len", ProtoField.uint32("ferry.msg_len", "Message length", base.DEC))
F("frag_off", ProtoField.uint32("ferry.frag_off", "Fragment offset",
	base.DEC))
F("csum", ProtoField.uint32("ferry.csum", "Checksum", base.HEX))
F("csum_calc", ProtoField.uint32("ferry.csum.calculated",
	"Calculated checksum (CRC32C)", base.HEX))
F("csum_status", ProtoField.uint8("ferry.csum.status", "Checksum status",
	base.DEC, { [0] = "Bad", [1] = "Good", [2] = "Unverified" }))
F("payload_len", ProtoField.uint32("ferry.payload_len",
	"Payload length (this frame)", base.DEC))
F("fragmented", ProtoField.bool("ferry.fragmented",
	"Fragment of a longer message"))
F("last_frag", ProtoField.bool("ferry.last_fragment",
	"Last fragment of its message"))
F("retrans", ProtoField.framenum("ferry.retransmission_of",
	"Retransmission of frame"))
F("payload", ProtoField.bytes("ferry.payload", "Payload"))
F("app_len", ProtoField.uint32("ferry.app_len",
	"Application payload length (message less its blocks)", base.DEC))
F("ignored", ProtoField.bytes("ferry.ignored", "Ignored bytes"))

-- CONNECT and ACCEPT bodies (section 5).
F("tlv", ProtoField.bytes("ferry.tlv", "TLV"))
F("tlv_type", ProtoField.uint8("ferry.tlv.type", "Type", base.HEX,
	tlv_names))
F("tlv_crit", ProtoField.bool("ferry.tlv.critical", "Critical", 8, nil,
	0x80))
F("tlv_rsvd", ProtoField.uint8("ferry.tlv.reserved", "Reserved", base.HEX))
F("tlv_len", ProtoField.uint16("ferry.tlv.len", "Length", base.DEC))
F("tlv_value", ProtoField.bytes("ferry.tlv.value", "Value"))
F("p_max_msg", ProtoField.uint32("ferry.params.max_msg", "max_msg",
	base.DEC))
F("p_credits", ProtoField.uint32("ferry.params.credits", "credits",
	base.DEC))
F("p_max_frame", ProtoField.uint16("ferry.params.max_frame", "max_frame",
	base.DEC))
F("p_slots", ProtoField.uint16("ferry.params.slots", "slots", base.DEC))
F("p_rsvd", ProtoField.uint32("ferry.params.reserved", "Reserved",
	base.HEX))
F("traceparent", ProtoField.string("ferry.traceparent", "traceparent"))
F("tracestate", ProtoField.string("ferry.tracestate", "tracestate"))
F("token", ProtoField.bytes("ferry.token", "Channel token"))
F("features", ProtoField.uint32("ferry.features", "Features", base.HEX))
F("feat_iou", ProtoField.bool("ferry.features.iou", "FERRY_FEAT_IOU", 32,
	nil, 0x1))
F("feat_trace", ProtoField.bool("ferry.features.trace", "FERRY_FEAT_TRACE",
	32, nil, 0x2))
-- Wire v2 only (docs/wire.md, 10.6): the AES-256-GCM suite offered.
F("feat_aesgcm", ProtoField.bool("ferry.features.aesgcm",
	"FERRY_W2_FEAT_AESGCM", 32, nil, 0x40))

-- CREDIT's SACK (section 7).
F("sack", ProtoField.uint64("ferry.sack", "SACK bitmap", base.HEX))
F("sack_seq", ProtoField.uint32("ferry.sack.seq", "SACKed seq", base.DEC))

-- Error bodies (section 6).
F("err_code", ProtoField.uint32("ferry.error.code", "Code", base.DEC,
	error_codes))
F("err_len", ProtoField.uint16("ferry.error.msg_len", "Text length",
	base.DEC))
F("err_text", ProtoField.string("ferry.error.text", "Text"))

-- Trace blocks (section 8).
F("tb", ProtoField.bytes("ferry.trace", "Trace block"))
F("tb_version", ProtoField.uint8("ferry.trace.version", "Version", base.DEC))
F("tb_rsvd", ProtoField.uint8("ferry.trace.reserved", "Reserved", base.HEX))
F("tb_len", ProtoField.uint16("ferry.trace.block_len", "Block length",
	base.DEC))
F("tb_parent", ProtoField.string("ferry.trace.traceparent", "traceparent"))
F("tb_state", ProtoField.string("ferry.trace.tracestate", "tracestate"))

-- Token tables (section 8).
F("caps", ProtoField.bytes("ferry.caps", "Token table"))
F("caps_version", ProtoField.uint8("ferry.caps.version", "Version",
	base.DEC))
F("caps_count", ProtoField.uint8("ferry.caps.count", "Count", base.DEC))
F("caps_len", ProtoField.uint16("ferry.caps.table_len", "Table length",
	base.DEC))
F("cap", ProtoField.bytes("ferry.cap", "Entry"))
F("cap_kind", ProtoField.uint8("ferry.cap.kind", "Kind", base.DEC,
	cap_kinds))
F("cap_rsvd", ProtoField.uint8("ferry.cap.reserved", "Reserved", base.HEX))
F("cap_len", ProtoField.uint16("ferry.cap.len", "Length", base.DEC))
F("cap_token", ProtoField.bytes("ferry.cap.token", "Token"))
F("cap_iou", ProtoField.uint64("ferry.cap.iou", "IOU id", base.DEC))

-- Attribute blocks (section 8).
F("ab", ProtoField.bytes("ferry.attrs", "Attribute block"))
F("ab_version", ProtoField.uint8("ferry.attrs.version", "Version",
	base.DEC))
F("ab_count", ProtoField.uint8("ferry.attrs.count", "Count", base.DEC))
F("ab_len", ProtoField.uint16("ferry.attrs.block_len", "Block length",
	base.DEC))
F("attr", ProtoField.bytes("ferry.attr", "Attribute"))
F("attr_type", ProtoField.uint8("ferry.attr.type", "Type", base.DEC,
	attr_types))
F("attr_klen", ProtoField.uint8("ferry.attr.key_len", "Key length",
	base.DEC))
F("attr_vlen", ProtoField.uint16("ferry.attr.value_len", "Value length",
	base.DEC))
F("attr_key", ProtoField.string("ferry.attr.key", "Key"))
F("attr_str", ProtoField.string("ferry.attr.string", "String value"))
F("attr_int", ProtoField.int64("ferry.attr.int64", "Int64 value",
	base.DEC))
F("attr_bool", ProtoField.uint8("ferry.attr.bool", "Bool value", base.DEC))
F("attr_dbl", ProtoField.double("ferry.attr.double", "Double value"))

-- PUSH records (section 8).
F("push", ProtoField.bytes("ferry.push", "PUSH record"))
F("push_iou", ProtoField.uint64("ferry.push.iou", "IOU id", base.DEC))
F("push_code", ProtoField.uint32("ferry.push.code", "Code", base.DEC,
	push_codes))
F("push_tlen", ProtoField.uint16("ferry.push.token_len", "Token length",
	base.DEC))
F("push_rsvd", ProtoField.uint16("ferry.push.reserved", "Reserved",
	base.HEX))
F("push_token", ProtoField.bytes("ferry.push.token", "Token"))

---------------------------------------------------------------------------
-- Expert info
---------------------------------------------------------------------------
local ex = {}
local function E(key, abbr, text, group, sev)
	ex[key] = ProtoExpert.new(abbr, text, group, sev)
end
local MAL, ERR = expert.group.MALFORMED, expert.severity.ERROR
E("truncated", "ferry.truncated", "Truncated frame", MAL, ERR)
E("oversized", "ferry.oversized", "Oversized frame or message", MAL, ERR)
E("bad_magic", "ferry.bad_magic", "Bad magic", MAL, ERR)
E("bad_version", "ferry.bad_version", "Bad version", MAL, ERR)
E("bad_type", "ferry.bad_type", "Unknown frame type", MAL, ERR)
E("bad_flags", "ferry.bad_flags", "Flags not allowed for the type", MAL, ERR)
E("bad_session", "ferry.bad_session", "Session id not allowed here", MAL,
	ERR)
E("bad_field", "ferry.bad_field", "Header field breaks a rule", MAL, ERR)
E("len_mismatch", "ferry.length_mismatch",
	"msg_len, frag_off and the datagram's length disagree", MAL, ERR)
E("bad_tlv", "ferry.bad_tlv", "Malformed CONNECT/ACCEPT TLV list", MAL, ERR)
E("bad_body", "ferry.bad_body", "Malformed body", MAL, ERR)
E("bad_block", "ferry.bad_block",
	"Malformed trace block, token table or attribute block", MAL, ERR)
E("bad_csum", "ferry.checksum_bad", "CRC32C checksum mismatch",
	expert.group.CHECKSUM, ERR)
E("block_skipped", "ferry.block_skipped",
	"Block a v1 receiver skips or refuses (unknown version)",
	expert.group.PROTOCOL, expert.severity.WARN)
E("cut_short", "ferry.cut_short", "Error response cut short in transit",
	MAL, ERR)
E("retrans", "ferry.retransmission", "Retransmission (same seq again)",
	expert.group.SEQUENCE, expert.severity.NOTE)
E("continues", "ferry.block_continues",
	"Block continues in a later fragment", expert.group.REASSEMBLE,
	expert.severity.NOTE)
E("v2_sealed", "ferry.v2.sealed", "Frames encrypted (aead mode)",
	expert.group.UNDECODED, expert.severity.NOTE)


ferry.prefs.udp_port = Pref.uint("UDP port", 31850,
	"UDP port of ferry endpoints (ferry-bench's default is 31850)")
ferry.prefs.check_csum = Pref.bool("Verify CRC32C", true,
	"Verify the csum field of frames with FF_CSUM (docs/wire.md section 7)")
ferry.prefs.heuristic = Pref.bool("Heuristic on any UDP port", true,
	"Take UDP datagrams that start with a v1 header on any port")

---------------------------------------------------------------------------
-- CRC32C (Castagnoli), as docs/wire.md section 7 defines it
---------------------------------------------------------------------------
local crc_table = {}
for i = 0, 255 do
	local c = i
	for _ = 1, 8 do
		if band(c, 1) ~= 0 then
			c = bxor(rshift(c, 1), 0x82F63B78)
		else
			c = rshift(c, 1)
		end
	end
	crc_table[i] = c
end

local function crc_update(crc, s)
	for i = 1, #s do
		crc = bxor(rshift(crc, 8), crc_table[band(bxor(crc, s:byte(i)), 0xff)])
	end
	return crc
end

-- The checksum of a v1 frame: header bytes 0..39, four zero bytes for the
-- csum field, then the payload.
local function frame_crc(tvb)
	local crc = crc_update(0xFFFFFFFF, tvb:raw(0, 40))
	crc = crc_update(crc, "\0\0\0\0")
	if tvb:len() > HDR_LEN then
		crc = crc_update(crc, tvb:raw(HDR_LEN, tvb:len() - HDR_LEN))
	end
	return bxor(crc, 0xFFFFFFFF) % 4294967296
end

---------------------------------------------------------------------------
-- Helpers
---------------------------------------------------------------------------
local function hex32(v) return string.format("0x%08x", v) end

-- Printable text, for trace context and keys shown in the Info column.
local function text(tvb, off, len)
	if len <= 0 then return "" end
	return tvb(off, len):string()
end

-- Per-capture state: the first frame that carried each data seq, keyed by
-- the sender's address, port, session and seq, so that retransmissions
-- are marked.  Filled on the first pass, read on later ones.
local seen_seq, retrans_of = {}, {}
local W -- the table the three files share, made below
function ferry.init()
	seen_seq, retrans_of = {}, {}
	if W.v2_init then W.v2_init() end
end

local function mark_retrans(pinfo, tree, src_sess, seq)
	if not pinfo.visited then
		local key = tostring(pinfo.src) .. ":" .. pinfo.src_port .. "/" ..
			src_sess .. "/" .. seq
		local first = seen_seq[key]
		if first and first ~= pinfo.number then
			retrans_of[pinfo.number] = first
		elseif not first then
			seen_seq[key] = pinfo.number
		end
	end
	local first = retrans_of[pinfo.number]
	if first then
		tree:add(f.retrans, first):set_generated()
		tree:add_proto_expert_info(ex.retrans)
		return true
	end
	return false
end

---------------------------------------------------------------------------
-- The bodies (ferry_body.lua) and wire v2 (ferry_v2.lua), loaded from this
-- file's folder; they read and extend the table W.
---------------------------------------------------------------------------
W = { f = f, ex = ex, F = F, E = E, band = band, bor = bor,
	bxor = bxor, rshift = rshift, HDR_LEN = HDR_LEN, MAX_MSG = MAX_MSG,
	MAX_FRAME = MAX_FRAME, FT = FT, TLV_PARAMS = TLV_PARAMS,
	TLV_TRACEPARENT = TLV_TRACEPARENT, TLV_TRACESTATE = TLV_TRACESTATE,
	TLV_TOKEN = TLV_TOKEN, TLV_FEATURES = TLV_FEATURES,
	tlv_names = tlv_names, tlv_len = tlv_len, error_codes = error_codes,
	cap_kinds = cap_kinds, attr_types = attr_types, text = text,
	hex32 = hex32, crc_update = crc_update, FF_TRACE = FF_TRACE,
	FF_CAPS = FF_CAPS, FF_ERR = FF_ERR }
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or ""
local function load_part(name)
	local chunk, err = loadfile(here .. name)
	if not chunk then error(err) end
	chunk(W)
end
load_part("ferry_body.lua")
local dissect_tlvs, dissect_sack = W.dissect_tlvs, W.dissect_sack
local dissect_error_body, dissect_push = W.dissect_error_body, W.dissect_push
local dissect_message = W.dissect_message

---------------------------------------------------------------------------
-- Wire v1: the header and its rules (docs/wire.md sections 2 and 3)
---------------------------------------------------------------------------
local function add_session(tree, field, tvb, off)
	local st = tree:add(field, tvb(off, 4))
	st:add(f.sess_gen, tvb(off, 4))
	st:add(f.sess_index, tvb(off, 4))
	tree:add(f.session, tvb(off, 4)):set_hidden()
	return st
end

-- What is left of a header shorter than 44 bytes.
local function dissect_truncated(tvb, tree)
	local len = tvb:len()
	if len >= 2 then tree:add(f.magic, tvb(0, 2)) end
	if len >= 3 then tree:add(f.version, tvb(2, 1)) end
	if len >= 4 then tree:add(f.type, tvb(3, 1)) end
	tree:add_proto_expert_info(ex.truncated, string.format(
		"Frame of %d bytes, shorter than the %d-byte header", len, HDR_LEN))
	return "truncated frame (" .. len .. " bytes)"
end

local function add_flags(tvb, tree)
	local ft = tree:add(f.flags, tvb(4, 2))
	ft:add(f.ff_reply, tvb(4, 2))
	ft:add(f.ff_csum, tvb(4, 2))
	ft:add(f.ff_err, tvb(4, 2))
	ft:add(f.ff_caps, tvb(4, 2))
	ft:add(f.ff_trace, tvb(4, 2))
	ft:add(f.ff_rsvd, tvb(4, 2))
	return ft
end

-- Rules 6 to 10: the fields of a frame of a known type.  h holds them.
local function check_rules(h, items, tree)
	local allowed = ff_allowed[h.type]
	if band(h.flags, 0xffff - allowed) ~= 0 then
		items.flags:add_proto_expert_info(ex.bad_flags)
	elseif h.type == FT.RESPONSE and band(h.flags, FF_ERR) ~= 0 and
	    band(h.flags, FF_TRACE) ~= 0 then
		items.flags:add_proto_expert_info(ex.bad_flags,
			"RESPONSE with both ERR and TRACE")
	end
	if h.type == FT.CONNECT and h.dst ~= 0 then
		items.dst:add_proto_expert_info(ex.bad_session,
			"CONNECT with dst_sess not 0")
	elseif h.type ~= FT.CONNECT and h.dst == 0 then
		items.dst:add_proto_expert_info(ex.bad_session, "dst_sess is 0")
	end
	if h.src == 0 and h.type ~= FT.ERROR then
		items.src:add_proto_expert_info(ex.bad_session, "src_sess is 0")
	end
	local data = h.type == FT.REQUEST or h.type == FT.RESPONSE or
		h.type == FT.PUSH
	if data then
		if h.msg_len > MAX_MSG then
			items.msg_len:add_proto_expert_info(ex.oversized,
				"msg_len above 2^30")
		end
		if h.type ~= FT.PUSH and h.req_id == 0 then
			items.req_id:add_proto_expert_info(ex.bad_field, "req_id is 0")
		elseif h.type == FT.PUSH and (h.req_id ~= 0 or h.method ~= 0 or
		    h.frag_off ~= 0) then
			tree:add_proto_expert_info(ex.bad_field,
				"PUSH with req_id, method or frag_off not 0")
		elseif h.type == FT.PUSH and h.msg_len ~= h.plen then
			items.msg_len:add_proto_expert_info(ex.len_mismatch,
				"PUSH msg_len differs from its payload length")
		end
		if h.frag_off + h.plen > h.msg_len then
			items.frag_off:add_proto_expert_info(ex.len_mismatch,
				"frag_off + payload length beyond msg_len")
		elseif h.plen == 0 and h.msg_len ~= 0 then
			items.msg_len:add_proto_expert_info(ex.len_mismatch,
				"No payload while msg_len is not 0")
		end
	else
		if h.frag_off ~= 0 or h.req_id ~= 0 or h.method ~= 0 or
		    h.seq ~= 0 then
			tree:add_proto_expert_info(ex.bad_field,
				"Control frame with frag_off, req_id, method or seq not 0")
		end
		if h.msg_len ~= h.plen then
			items.msg_len:add_proto_expert_info(ex.len_mismatch,
				"msg_len differs from the payload length")
		end
	end
	return data
end

-- Rule 11: FF_CSUM and the CRC32C.
local function check_csum(tvb, h, item)
	if band(h.flags, FF_CSUM) == 0 then return end
	if not ferry.prefs.check_csum then
		item:add(f.csum_status, 2):set_generated()
		return
	end
	local calc = frame_crc(tvb)
	item:add(f.csum_calc, calc):set_generated()
	if calc == h.csum then
		item:add(f.csum_status, 1):set_generated()
		item:append_text(" [correct]")
	else
		item:add(f.csum_status, 0):set_generated()
		item:add_proto_expert_info(ex.bad_csum, string.format(
			"CRC32C mismatch: frame has %s, computed %s", hex32(h.csum),
			hex32(calc)))
	end
end

local function read_header(tvb)
	return { magic = tvb(0, 2):uint(), version = tvb(2, 1):uint(),
		type = tvb(3, 1):uint(), flags = tvb(4, 2):uint(),
		method = tvb(6, 2):uint(), dst = tvb(8, 4):uint(),
		src = tvb(12, 4):uint(), seq = tvb(16, 4):uint(),
		ack = tvb(20, 4):uint(), credit = tvb(24, 4):uint(),
		req_id = tvb(28, 4):uint(), msg_len = tvb(32, 4):uint(),
		frag_off = tvb(36, 4):uint(), csum = tvb(40, 4):uint(),
		plen = tvb:len() - HDR_LEN }
end

local function add_header(tvb, h, tree)
	local items = {}
	tree:add(f.magic, tvb(0, 2))
	tree:add(f.version, tvb(2, 1))
	items.type = tree:add(f.type, tvb(3, 1))
	items.flags = add_flags(tvb, tree)
	tree:add(f.method, tvb(6, 2))
	items.dst = add_session(tree, f.dst_sess, tvb, 8)
	items.src = add_session(tree, f.src_sess, tvb, 12)
	tree:add(f.seq, tvb(16, 4))
	tree:add(f.ack, tvb(20, 4))
	tree:add(f.credit, tvb(24, 4))
	items.req_id = tree:add(f.req_id, tvb(28, 4))
	items.msg_len = tree:add(f.msg_len, tvb(32, 4))
	items.frag_off = tree:add(f.frag_off, tvb(36, 4))
	items.csum = tree:add(f.csum, tvb(40, 4))
	tree:add(f.payload_len, h.plen):set_generated()
	return items
end

local function flag_names(flags)
	local n = {}
	if band(flags, FF_REPLY) ~= 0 then n[#n + 1] = "REPLY" end
	if band(flags, FF_CSUM) ~= 0 then n[#n + 1] = "CSUM" end
	if band(flags, FF_ERR) ~= 0 then n[#n + 1] = "ERR" end
	if band(flags, FF_CAPS) ~= 0 then n[#n + 1] = "CAPS" end
	if band(flags, FF_TRACE) ~= 0 then n[#n + 1] = "TRACE" end
	if #n == 0 then return "" end
	return "|" .. table.concat(n, "|")
end

-- The body of a frame that passed rules 1 to 5.  Returns Info text.
local function dissect_body(tvb, pinfo, h, tree)
	local t = h.type
	if t == FT.CONNECT or t == FT.ACCEPT then
		return " [" .. dissect_tlvs(tvb, t, HDR_LEN, tree) .. "]"
	elseif t == FT.CREDIT then
		return dissect_sack(tvb, HDR_LEN, h.ack, tree)
	elseif t == FT.ERROR then
		return dissect_error_body(tvb, HDR_LEN, tree)
	elseif t == FT.PUSH then
		return dissect_push(tvb, HDR_LEN, tree)
	elseif t == FT.CLOSE or t == FT.PING then
		if h.plen > 0 then tree:add(f.ignored, tvb(HDR_LEN, h.plen)) end
		return ""
	end
	-- REQUEST and RESPONSE.
	if h.plen ~= h.msg_len then tree:add(f.fragmented, true):set_generated() end
	tree:add(f.last_frag, h.frag_off + h.plen >= h.msg_len):set_generated()
	if t == FT.RESPONSE and band(h.flags, FF_ERR) ~= 0 then
		if h.frag_off ~= 0 then
			tree:add_proto_expert_info(ex.bad_body,
				"Error response not in one frame")
			return ""
		elseif h.plen < h.msg_len then
			tree:add_proto_expert_info(ex.cut_short)
			return ""
		end
		return dissect_error_body(tvb, HDR_LEN, tree)
	end
	return dissect_message(tvb, HDR_LEN, t, h.flags, h.msg_len, h.frag_off,
		tree)
end

local function dissect_v1(tvb, pinfo, tree)
	if tvb:len() < HDR_LEN then
		return dissect_truncated(tvb, tree)
	end
	local h = read_header(tvb)
	local items = add_header(tvb, h, tree)
	if tvb:len() > MAX_FRAME then
		tree:add_proto_expert_info(ex.oversized, "Datagram above 65507 bytes")
	end
	if h.magic ~= 0x4652 then
		tree:add_proto_expert_info(ex.bad_magic, string.format(
			"Magic 0x%04x, not 0x4652 (\"FR\")", h.magic))
		return "bad magic"
	end
	if h.version ~= 1 then
		tree:add_proto_expert_info(ex.bad_version, string.format(
			"Version %d, not 1", h.version))
		return "bad version " .. h.version
	end
	local name = ft_names[h.type]
	if not name then
		items.type:add_proto_expert_info(ex.bad_type, string.format(
			"Type %d is not 1..9", h.type))
		return "unknown type " .. h.type
	end
	tree:append_text(", " .. name)
	local data = check_rules(h, items, tree)
	check_csum(tvb, h, items.csum)
	local info = string.format("%s%s %s>%s", name, flag_names(h.flags),
		hex32(h.src), hex32(h.dst))
	if data then
		mark_retrans(pinfo, tree, h.src, h.seq)
		info = info .. string.format(" seq=%d", h.seq)
	end
	info = info .. string.format(" ack=%d cr=%d", h.ack, h.credit)
	if h.type == FT.REQUEST or h.type == FT.RESPONSE then
		info = info .. string.format(" req=%d m=%d len=%d", h.req_id,
			h.method, h.msg_len)
		if h.plen ~= h.msg_len then
			info = info .. string.format(" [%d+%d]", h.frag_off, h.plen)
		end
	end
	if retrans_of[pinfo.number] then info = info .. " (retransmission)" end
	return info .. dissect_body(tvb, pinfo, h, tree)
end

-- Wire v2 (docs/wire.md), from ferry_v2.lua.
load_part("ferry_v2.lua")
local dissect_v2_short, dissect_v2_long = W.dissect_v2_short,
	W.dissect_v2_long

-- Every field and expert of the three files, registered once.
local fl, el = {}, {}
for _, v in pairs(f) do fl[#fl + 1] = v end
for _, v in pairs(ex) do el[#el + 1] = v end
ferry.fields = fl
ferry.experts = el

---------------------------------------------------------------------------
-- The dissector: dispatch on the first byte
---------------------------------------------------------------------------
function ferry.dissector(tvb, pinfo, tree)
	local len = tvb:len()
	if len == 0 then return 0 end
	pinfo.cols.protocol = "ferry"
	local root = tree:add(ferry, tvb())
	local b = tvb(0, 1):uint()
	W.pinfo = pinfo -- for the v2 CONNECT inside a v1 envelope
	local info
	if b >= 0xC0 and dissect_v2_long then
		info = dissect_v2_long(tvb, pinfo, root)
	elseif b >= 0x80 and dissect_v2_short then
		info = dissect_v2_short(tvb, pinfo, root)
	else
		-- 0x46 and anything else: v1's rules decide (truncated first,
		-- then the magic).
		info = dissect_v1(tvb, pinfo, root)
	end
	pinfo.cols.info = info
	return len
end

local function heuristic(tvb, pinfo, tree)
	if not ferry.prefs.heuristic then return false end
	if W.v2_known(tvb) then
		ferry.dissector(tvb, pinfo, tree)
		return true
	end
	if tvb:len() < HDR_LEN then return false end
	if tvb(0, 2):uint() ~= 0x4652 or tvb(2, 1):uint() ~= 1 then
		return false
	end
	local t = tvb(3, 1):uint()
	if t < 1 or t > 9 then return false end
	ferry.dissector(tvb, pinfo, tree)
	return true
end
ferry:register_heuristic("udp", heuristic)

local port_registered = 0
local function register_port()
	local udp = DissectorTable.get("udp.port")
	if port_registered ~= 0 then udp:remove(port_registered, ferry) end
	port_registered = ferry.prefs.udp_port
	if port_registered ~= 0 then udp:add(port_registered, ferry) end
end
function ferry.prefs_changed()
	if port_registered ~= ferry.prefs.udp_port then register_port() end
end
register_port()
