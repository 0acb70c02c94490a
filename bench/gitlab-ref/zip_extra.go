package main

import (
	"encoding/binary"
	"fmt"
	"time"
)

// The two zip extra fields fastzip writes (through saracen/zipextra, not packaged by Debian).
const (
	extendedTimestampID = 0x5455 // flags 1 (modification time), then Unix seconds
	infoZIPUnixID       = 0x7875 // version 1, then UID and GID, little-endian, at least 4 bytes each
)

func mtimeExtra(t time.Time) []byte {
	b := make([]byte, 9)
	binary.LittleEndian.PutUint16(b[0:], extendedTimestampID)
	binary.LittleEndian.PutUint16(b[2:], 5)
	b[4] = 1
	binary.LittleEndian.PutUint32(b[5:], uint32(t.Unix()))
	return b
}

func unixOwnerExtra(uid, gid uint32) []byte {
	b := make([]byte, 4+1+1+4+1+4)
	binary.LittleEndian.PutUint16(b[0:], infoZIPUnixID)
	binary.LittleEndian.PutUint16(b[2:], uint16(len(b)-4))
	b[4] = 1
	b[5] = 4
	binary.LittleEndian.PutUint32(b[6:], uid)
	b[10] = 4
	binary.LittleEndian.PutUint32(b[11:], gid)
	return b
}

// extraFields splits a zip extra block by id, the last of an id winning; a field running past the
// end is an error, as zipextra.Parse makes it one (and fastzip fails the extraction on it).
func extraFields(extra []byte) (map[uint16][]byte, error) {
	fields := map[uint16][]byte{}
	for len(extra) >= 4 {
		id := binary.LittleEndian.Uint16(extra)
		size := int(binary.LittleEndian.Uint16(extra[2:]))
		extra = extra[4:]
		if len(extra) < size {
			return fields, fmt.Errorf("zip extra field 0x%04x: unexpected end", id)
		}
		fields[id] = extra[:size]
		extra = extra[size:]
	}
	return fields, nil
}

// owner decodes the Info-ZIP Unix field; a field zipextra refuses is an error, which fails the
// extraction as it does in fastzip (zipMetadata).
func owner(field []byte) (uid, gid int, err error) {
	if len(field) < 3 {
		return 0, 0, fmt.Errorf("zip extra field 0x7875: too short")
	}
	num := func(b []byte) int {
		v := 0
		for i := len(b) - 1; i >= 0; i-- {
			v = v<<8 | int(b[i])
		}
		return v
	}
	field = field[1:]
	n := int(field[0])
	if len(field)-1 < n {
		return 0, 0, fmt.Errorf("zip extra field 0x7875: UID past the end")
	}
	uid = num(field[1 : 1+n])
	field = field[1+n:]
	if len(field) < 1 || len(field)-1 < int(field[0]) {
		return 0, 0, fmt.Errorf("zip extra field 0x7875: GID past the end")
	}
	gid = num(field[1 : 1+int(field[0])])
	return uid, gid, nil
}
