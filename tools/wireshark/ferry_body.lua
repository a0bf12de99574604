-- ferry_body.lua: the bodies of ferry frames, for ferry.lua (which loads
-- it from its own folder): CONNECT/ACCEPT TLVs, CREDIT's SACK, error
-- bodies, PUSH records, and the blocks at the start of a message (trace
-- block, token table, attribute block; docs/wire.md sections 5 to 8).
-- Wire v2 keeps these layouts (docs/wire.md section 0), so every
-- function takes mo, the tvb offset where the body or message starts.

local W = ...
local f = W.f
local ex = W.ex
local band = W.band
local rshift = W.rshift
local MAX_MSG = W.MAX_MSG
local MAX_FRAME = W.MAX_FRAME
local FT = W.FT
local TLV_PARAMS = W.TLV_PARAMS
local TLV_TRACEPARENT = W.TLV_TRACEPARENT
local TLV_TRACESTATE = W.TLV_TRACESTATE
local TLV_TOKEN = W.TLV_TOKEN
local TLV_FEATURES = W.TLV_FEATURES
local tlv_names = W.tlv_names
local tlv_len = W.tlv_len
local error_codes = W.error_codes
local cap_kinds = W.cap_kinds
local attr_types = W.attr_types
local text = W.text
local FF_TRACE = W.FF_TRACE
local FF_CAPS = W.FF_CAPS

---------------------------------------------------------------------------
-- CONNECT and ACCEPT bodies: the TLV list (docs/wire.md section 5)
---------------------------------------------------------------------------
local function dissect_params(tvb, off, t)
	local max_msg = tvb(off, 4):uint()
	local credits = tvb(off + 4, 4):uint()
	local max_frame = tvb(off + 8, 2):uint()
	local slots = tvb(off + 10, 2):uint()
	local bad = {}
	if max_msg < 1 or max_msg > MAX_MSG then bad[#bad + 1] = "max_msg" end
	if credits == 0 then bad[#bad + 1] = "credits" end
	if max_frame < 108 or max_frame > MAX_FRAME then
		bad[#bad + 1] = "max_frame"
	end
	if slots == 0 then bad[#bad + 1] = "slots" end
	if tvb(off + 12, 4):uint() ~= 0 then bad[#bad + 1] = "reserved" end
	t:add(f.p_max_msg, tvb(off, 4))
	t:add(f.p_credits, tvb(off + 4, 4))
	t:add(f.p_max_frame, tvb(off + 8, 2))
	t:add(f.p_slots, tvb(off + 10, 2))
	t:add(f.p_rsvd, tvb(off + 12, 4))
	t:append_text(string.format(": max_msg %d, credits %d, max_frame %d, " ..
		"slots %d", max_msg, credits, max_frame, slots))
	if #bad > 0 then
		t:add_proto_expert_info(ex.bad_tlv, "PARAMS out of range: " ..
			table.concat(bad, ", "))
	end
end

local function dissect_tlv_value(tvb, ftype, typ, off, len, t)
	if typ == TLV_PARAMS then
		dissect_params(tvb, off, t)
	elseif typ == TLV_TRACEPARENT then
		t:add(f.traceparent, tvb(off, len))
	elseif typ == TLV_TRACESTATE then
		if len > 0 then t:add(f.tracestate, tvb(off, len)) end
	elseif typ == TLV_TOKEN then
		t:add(f.token, tvb(off, len))
		if ftype == FT.ACCEPT then
			t:add_proto_expert_info(ex.bad_tlv,
				"TOKEN in an ACCEPT: server tokens are not defined")
		end
	elseif typ == 0x86 then
		-- WIRE2: a v2 CONNECT in its v1 envelope (docs/wire.md 4.2),
		-- which a v1 server refuses with FERRY_EVERSION.
		t:append_text(": wire v2 CONNECT")
		-- The envelope's src_sess is the inner SCID's low 32 bits, and
		-- the CONNECT, envelope included, is at least 512 bytes.
		if ftype ~= FT.CONNECT or off ~= W.HDR_LEN + 24 or
		    off + len ~= tvb:len() then
			t:add_proto_expert_info(ex.bad_tlv,
				"Envelope not PARAMS then WIRE2 to the end, in a CONNECT")
		elseif len >= 18 and tvb(12, 4):uint() ~= tvb(off + 14, 4):uint() then
			t:add_proto_expert_info(ex.bad_tlv,
				"Envelope src_sess is not the inner SCID's low 32 bits")
		end
		if tvb:len() < 512 then
			t:add_proto_expert_info(ex.bad_tlv,
				"CONNECT shorter than 512 bytes (anti-amplification)")
		end
		W.dissect_v2_long(tvb(off, len):tvb(), W.pinfo, t)
	elseif typ == TLV_FEATURES then
		local ft = t:add(f.features, tvb(off, 4))
		ft:add(f.feat_iou, tvb(off, 4))
		ft:add(f.feat_trace, tvb(off, 4))
	elseif len > 0 then
		t:add(f.tlv_value, tvb(off, len))
	end
end

-- Returns a short summary for the Info column.
local function dissect_tlvs(tvb, ftype, off, tree)
	local stop = tvb:len()
	local seen, names = {}, {}
	while off < stop do
		if stop - off < 4 then
			local t = tree:add(f.tlv, tvb(off, stop - off))
			t:add_proto_expert_info(ex.bad_tlv, "TLV header runs past the body")
			return table.concat(names, ",")
		end
		local typ = tvb(off, 1):uint()
		local len = tvb(off + 2, 2):uint()
		local name = tlv_names[typ] or string.format("0x%02x", typ)
		local whole = math.min(4 + len, stop - off)
		local t = tree:add(f.tlv, tvb(off, whole))
		t:set_text("TLV " .. name .. " (" .. len .. " bytes)")
		t:add(f.tlv_type, tvb(off, 1))
		t:add(f.tlv_crit, tvb(off, 1))
		local rt = t:add(f.tlv_rsvd, tvb(off + 1, 1))
		t:add(f.tlv_len, tvb(off + 2, 2))
		names[#names + 1] = name
		if tvb(off + 1, 1):uint() ~= 0 then
			rt:add_proto_expert_info(ex.bad_tlv, "Reserved byte not 0")
		end
		if 4 + len > stop - off then
			t:add_proto_expert_info(ex.bad_tlv, "TLV value runs past the body")
			return table.concat(names, ",")
		end
		local rule = tlv_len[typ]
		if rule then
			if seen[typ] then
				t:add_proto_expert_info(ex.bad_tlv, name .. " appears twice")
			end
			seen[typ] = true
			if len < rule[1] or len > rule[2] then
				t:add_proto_expert_info(ex.bad_tlv, name .. " has a bad length")
			else
				dissect_tlv_value(tvb, ftype, typ, off + 4, len, t)
			end
		else
			if band(typ, 0x80) ~= 0 then
				t:add_proto_expert_info(ex.bad_tlv,
					"Unknown critical TLV (the server answers FERRY_EVERSION)")
			end
			dissect_tlv_value(tvb, ftype, typ, off + 4, len, t)
		end
		off = off + 4 + len
	end
	if not seen[TLV_PARAMS] then
		tree:add_proto_expert_info(ex.bad_tlv, "PARAMS missing")
	end
	return table.concat(names, ",")
end

---------------------------------------------------------------------------
-- CREDIT, ERROR bodies and PUSH records
---------------------------------------------------------------------------
local function dissect_sack(tvb, mo, ack, tree)
	local plen = tvb:len() - mo
	if plen < 8 then
		if plen > 0 then tree:add(f.ignored, tvb(mo, plen)) end
		return ""
	end
	local st = tree:add(f.sack, tvb(mo, 8))
	local hi, lo = tvb(mo, 4):uint(), tvb(mo + 4, 4):uint()
	local seqs = {}
	for i = 0, 63 do
		local word, b = lo, i
		if i >= 32 then word, b = hi, i - 32 end
		if band(rshift(word, b), 1) ~= 0 then
			local s = (ack + 1 + i) % 4294967296
			st:add(f.sack_seq, tvb(mo + 7 - math.floor(i / 8), 1), s)
				:set_generated()
			seqs[#seqs + 1] = s
		end
	end
	if plen > 8 then tree:add(f.ignored, tvb(mo + 8, plen - 8)) end
	if #seqs == 0 then return "" end
	return " sack=" .. #seqs
end

-- An error body fills [off, end of datagram) exactly.  Returns its summary.
-- min_code is the smallest code allowed: 1, or 0 in a v2 CLOSE (a clean
-- close).
local function dissect_error_body(tvb, off, tree, min_code)
	min_code = min_code or 1
	local len = tvb:len() - off
	if len < 6 then
		local t = tree:add(f.ignored, tvb(off, len > 0 and len or 0))
		t:add_proto_expert_info(ex.bad_body, "Error body shorter than 6 bytes")
		return ""
	end
	local code, tlen = tvb(off, 4):uint(), tvb(off + 4, 2):uint()
	local ct = tree:add(f.err_code, tvb(off, 4))
	tree:add(f.err_len, tvb(off + 4, 2))
	if code < min_code or code > 2147483647 then
		ct:add_proto_expert_info(ex.bad_body, string.format(
			"Code out of %d..2^31-1", min_code))
	end
	if tlen > 256 then
		tree:add_proto_expert_info(ex.bad_body, "Text longer than 256 bytes")
	end
	if 6 + tlen ~= len then
		tree:add_proto_expert_info(ex.bad_body,
			"Body does not end exactly after the text")
	end
	local shown = math.min(tlen, len - 6)
	local s = ""
	if shown > 0 then
		tree:add(f.err_text, tvb(off + 6, shown))
		s = tvb(off + 6, shown):string()
	end
	return string.format(" code=%d (%s) \"%s\"", code,
		code == 0 and "clean" or error_codes[code] or "?", s)
end

local function dissect_push(tvb, mo, tree)
	local off, stop = mo, tvb:len()
	local n = 0
	if off == stop then
		tree:add_proto_expert_info(ex.bad_body, "Empty PUSH body")
		return ""
	end
	local ious = {}
	while off < stop do
		if stop - off < 16 then
			local t = tree:add(f.push, tvb(off, stop - off))
			t:add_proto_expert_info(ex.bad_body, "Record runs past the body")
			break
		end
		local code = tvb(off + 8, 4):uint()
		local tlen = tvb(off + 12, 2):uint()
		local whole = math.min(16 + tlen, stop - off)
		local t = tree:add(f.push, tvb(off, whole))
		t:add(f.push_iou, tvb(off, 8))
		t:add(f.push_code, tvb(off + 8, 4))
		t:add(f.push_tlen, tvb(off + 12, 2))
		t:add(f.push_rsvd, tvb(off + 14, 2))
		local iou = tvb(off, 8):uint64()
		t:set_text(string.format("PUSH record: IOU %s, %s", tostring(iou),
			code == 0 and ("token of " .. tlen .. " bytes") or
			("code " .. code .. " " .. (error_codes[code] or ""))))
		ious[#ious + 1] = tostring(iou)
		if 16 + tlen > stop - off then
			t:add_proto_expert_info(ex.bad_body, "Record runs past the body")
			break
		end
		if tlen > 0 then t:add(f.push_token, tvb(off + 16, tlen)) end
		if code == 0 and (tlen < 1 or tlen > 952) then
			t:add_proto_expert_info(ex.bad_body, "Token length not in 1..952")
		elseif code ~= 0 and tlen ~= 0 then
			t:add_proto_expert_info(ex.bad_body,
				"A rejecting record carries a token")
		end
		if tvb(off + 14, 2):uint() ~= 0 then
			t:add_proto_expert_info(ex.bad_body, "Reserved field not 0")
		end
		n = n + 1
		off = off + 16 + tlen
	end
	return " iou=" .. table.concat(ious, ",")
end

---------------------------------------------------------------------------
-- Message blocks at the start of a REQUEST's or RESPONSE's message
-- (docs/wire.md section 8).  Senders put them in the first fragment; a
-- message offset m is at tvb offset mo + m there.  Each function
-- returns the message offset after its block, or nil when what follows
-- cannot be found, and a summary.
---------------------------------------------------------------------------
local function avail_to(tvb, mo, m, want)
	return mo + m + want <= tvb:len()
end

local function dissect_trace_block(tvb, mo, msg_len, tree)
	if msg_len < 4 then
		tree:add_proto_expert_info(ex.bad_block,
			"Trace block: message shorter than 4 bytes (FERRY_EPROTO)")
		return nil, ""
	end
	if not avail_to(tvb, mo, 0, 4) then
		tree:add_proto_expert_info(ex.continues)
		return nil, ""
	end
	local blen = tvb(mo + 2, 2):uint()
	local whole = math.min(blen, tvb:len() - mo)
	local t = tree:add(f.tb, tvb(mo, math.max(whole, 4)))
	t:set_text("Trace block (" .. blen .. " bytes)")
	local vt = t:add(f.tb_version, tvb(mo, 1))
	t:add(f.tb_rsvd, tvb(mo + 1, 1))
	t:add(f.tb_len, tvb(mo + 2, 2))
	if blen < 59 or blen > 571 or blen > msg_len then
		t:add_proto_expert_info(ex.bad_block,
			"Trace block length out of 59..571 or past the message " ..
			"(the call is refused with FERRY_EPROTO)")
		return nil, ""
	end
	if tvb(mo, 1):uint() ~= 1 or tvb(mo + 1, 1):uint() ~= 0 then
		vt:add_proto_expert_info(ex.block_skipped,
			"Trace block version not 1 or reserved not 0: skipped")
	end
	if not avail_to(tvb, mo, 0, blen) then
		t:add_proto_expert_info(ex.continues)
		return blen, ""
	end
	t:add(f.tb_parent, tvb(mo + 4, 55))
	if blen > 59 then t:add(f.tb_state, tvb(mo + 59, blen - 59)) end
	return blen, " tp=" .. text(tvb, mo + 4, 55)
end

-- One entry of a token table at tvb offset o, inside a table ending at
-- tvb offset tend.  Returns the offset after it, or nil.
local function dissect_cap(tvb, o, tend, t, n)
	if o + 4 > tend then
		t:add_proto_expert_info(ex.bad_block, "Entry runs past table_len")
		return nil
	end
	local kind, len = tvb(o, 1):uint(), tvb(o + 2, 2):uint()
	local et = t:add(f.cap, tvb(o, math.min(4 + len, tend - o)))
	et:set_text(string.format("Entry %d: %s, %d bytes", n,
		cap_kinds[kind] or "unknown kind", len))
	et:add(f.cap_kind, tvb(o, 1))
	et:add(f.cap_rsvd, tvb(o + 1, 1))
	et:add(f.cap_len, tvb(o + 2, 2))
	if o + 4 + len > tend then
		et:add_proto_expert_info(ex.bad_block, "Entry runs past table_len")
		return nil
	end
	if tvb(o + 1, 1):uint() ~= 0 then
		et:add_proto_expert_info(ex.bad_block, "Reserved byte not 0")
	end
	if len == 0 then
		et:add_proto_expert_info(ex.bad_block, "Empty value")
	elseif kind == 0 then
		et:add(f.cap_token, tvb(o + 4, len))
	elseif kind == 1 then
		if len ~= 8 then
			et:add_proto_expert_info(ex.bad_block, "IOU id not 8 bytes")
		else
			et:add(f.cap_iou, tvb(o + 4, 8))
			et:append_text(", id " .. tostring(tvb(o + 4, 8):uint64()))
		end
	else
		et:add_proto_expert_info(ex.bad_block, "Unknown entry kind")
	end
	return o + 4 + len
end

local function dissect_caps(tvb, mo, m, msg_len, tree)
	local rem = msg_len - m
	if rem <= 0 then
		tree:add_proto_expert_info(ex.bad_block,
			"Token table: empty message (FERRY_ECAPS)")
		return nil, ""
	end
	if not avail_to(tvb, mo, m, 4) then
		tree:add_proto_expert_info(ex.continues)
		return nil, ""
	end
	local o = mo + m
	local version, count = tvb(o, 1):uint(), tvb(o + 1, 1):uint()
	local tlen = tvb(o + 2, 2):uint()
	local t = tree:add(f.caps, tvb(o, math.min(math.max(tlen, 4),
		tvb:len() - o)))
	t:set_text("Token table (" .. count .. " entries, " .. tlen .. " bytes)")
	t:add(f.caps_version, tvb(o, 1))
	t:add(f.caps_count, tvb(o + 1, 1))
	t:add(f.caps_len, tvb(o + 2, 2))
	if version ~= 1 then
		t:add_proto_expert_info(ex.block_skipped,
			"Token table version not 1 (refused with EPROTONOSUPPORT)")
		return nil, ""
	end
	if count == 0 or count > 16 or tlen < 4 + 4 * count or tlen > 960 or
	    tlen > rem then
		t:add_proto_expert_info(ex.bad_block,
			"Token table count or table_len out of range (FERRY_ECAPS)")
		return nil, ""
	end
	if not avail_to(tvb, mo, m, tlen) then
		t:add_proto_expert_info(ex.continues)
		return m + tlen, ""
	end
	local p, tend, ious = o + 4, o + tlen, 0
	for n = 1, count do
		if tvb(p, 1):uint() == 1 and p + 4 <= tend then ious = ious + 1 end
		p = dissect_cap(tvb, p, tend, t, n)
		if not p then return m + tlen, "" end
	end
	if p ~= tend then
		t:add_proto_expert_info(ex.bad_block,
			"Entries end before table_len (FERRY_ECAPS)")
	end
	return m + tlen, string.format(" caps=%d(iou %d)", count, ious)
end

local attr_vlen = { [2] = 8, [3] = 1, [4] = 8 }

-- One attribute at tvb offset o in a block ending at tend.
local function dissect_attr(tvb, o, tend, t)
	if o + 4 > tend then
		t:add_proto_expert_info(ex.bad_block, "Attribute runs past block_len")
		return nil
	end
	local typ, klen = tvb(o, 1):uint(), tvb(o + 1, 1):uint()
	local vlen = tvb(o + 2, 2):uint()
	local at = t:add(f.attr, tvb(o, math.min(4 + klen + vlen, tend - o)))
	at:add(f.attr_type, tvb(o, 1))
	at:add(f.attr_klen, tvb(o + 1, 1))
	at:add(f.attr_vlen, tvb(o + 2, 2))
	if o + 4 + klen + vlen > tend then
		at:add_proto_expert_info(ex.bad_block, "Attribute runs past block_len")
		return nil
	end
	local key = klen > 0 and tvb(o + 4, klen):string() or ""
	if klen > 0 then at:add(f.attr_key, tvb(o + 4, klen)) end
	if klen < 1 or klen > 63 or not key:match("^[\33-\126]+$") then
		at:add_proto_expert_info(ex.bad_block,
			"Key empty, longer than 63 or not printable ASCII")
	end
	local v = o + 4 + klen
	local want = attr_vlen[typ]
	if typ == 1 then
		if vlen > 255 then
			at:add_proto_expert_info(ex.bad_block, "String longer than 255")
		end
		if vlen > 0 then at:add(f.attr_str, tvb(v, vlen)) end
	elseif not want then
		at:add_proto_expert_info(ex.bad_block, "Unknown attribute type")
	elseif vlen ~= want then
		at:add_proto_expert_info(ex.bad_block, "Value length wrong for type")
	elseif typ == 2 then
		at:add(f.attr_int, tvb(v, 8))
	elseif typ == 3 then
		local bt = at:add(f.attr_bool, tvb(v, 1))
		if tvb(v, 1):uint() > 1 then
			bt:add_proto_expert_info(ex.bad_block, "Bool not 0 or 1")
		end
	else
		at:add(f.attr_dbl, tvb(v, 8))
	end
	at:set_text(string.format("Attribute %s (%s)", key,
		attr_types[typ] or "unknown type"))
	return v + vlen
end

local function dissect_attrs(tvb, mo, msg_len, tree)
	if msg_len < 4 then
		tree:add_proto_expert_info(ex.bad_block,
			"Attribute block: message shorter than 4 bytes (FERRY_EPROTO)")
		return nil, ""
	end
	if not avail_to(tvb, mo, 0, 4) then
		tree:add_proto_expert_info(ex.continues)
		return nil, ""
	end
	local o = mo
	local version, count = tvb(o, 1):uint(), tvb(o + 1, 1):uint()
	local blen = tvb(o + 2, 2):uint()
	local t = tree:add(f.ab, tvb(o, math.min(math.max(blen, 4),
		tvb:len() - o)))
	t:set_text("Attribute block (" .. count .. " attributes, " .. blen ..
		" bytes)")
	t:add(f.ab_version, tvb(o, 1))
	t:add(f.ab_count, tvb(o + 1, 1))
	t:add(f.ab_len, tvb(o + 2, 2))
	if blen < 4 or blen > 960 or blen > msg_len then
		t:add_proto_expert_info(ex.bad_block,
			"Attribute block length out of 4..960 or past the message " ..
			"(the call fails with FERRY_EPROTO)")
		return nil, ""
	end
	if not avail_to(tvb, mo, 0, blen) then
		t:add_proto_expert_info(ex.continues)
		return blen, ""
	end
	if version ~= 1 then
		t:add_proto_expert_info(ex.block_skipped,
			"Attribute block version not 1: attributes ignored")
		return blen, ""
	end
	if count == 0 or count > 16 then
		t:add_proto_expert_info(ex.bad_block, "Count not in 1..16")
		return blen, ""
	end
	local p, tend = o + 4, o + blen
	for _ = 1, count do
		p = dissect_attr(tvb, p, tend, t)
		if not p then return blen, "" end
	end
	if p ~= tend then
		t:add_proto_expert_info(ex.bad_block,
			"Attributes end before block_len")
	end
	return blen, " attrs=" .. count
end

-- A REQUEST's or RESPONSE's payload (not an error body).
local function dissect_message(tvb, mo, ftype, flags, msg_len, frag_off,
		tree)
	local plen = tvb:len() - mo
	local m, info, s = 0, "", ""
	if frag_off == 0 then
		if ftype == FT.REQUEST and band(flags, FF_TRACE) ~= 0 then
			m, s = dissect_trace_block(tvb, mo, msg_len, tree)
			info = info .. s
		elseif ftype == FT.RESPONSE and band(flags, FF_TRACE) ~= 0 then
			m, s = dissect_attrs(tvb, mo, msg_len, tree)
			info = info .. s
		end
		if m and ftype == FT.REQUEST and band(flags, FF_CAPS) ~= 0 then
			m, s = dissect_caps(tvb, mo, m, msg_len, tree)
			info = info .. s
		end
		if m then
			tree:add(f.app_len, msg_len - m):set_generated()
		end
	else
		m = 0
	end
	m = m or plen
	if m < plen then
		tree:add(f.payload, tvb(mo + m, plen - m))
	end
	return info
end

W.dissect_tlvs = dissect_tlvs
W.dissect_sack = dissect_sack
W.dissect_error_body = dissect_error_body
W.dissect_push = dissect_push
W.dissect_message = dissect_message
