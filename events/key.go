package events

import "strings"

// PairKey is the key of a (business number, user) pair (A3): the phone_number_id, "/", and the
// user's wa_id, or the business-scoped user id when wa_id is empty. It is the Kafka record key of
// every pair event, so one pair's events stay in one partition, in order.
func PairKey(phoneNumberID, waID, userID string) string {
	id := waID
	if id == "" {
		id = userID
	}
	return phoneNumberID + "/" + id
}

// SplitPairKey returns the phone_number_id and user identity of a pair key.
func SplitPairKey(key string) (phoneNumberID, user string, ok bool) {
	i := strings.IndexByte(key, '/')
	if i <= 0 || i == len(key)-1 {
		return "", "", false
	}
	return key[:i], key[i+1:], true
}

// UserIdentity is the identity A3 keys a user by.
func UserIdentity(waID, userID string) string {
	if waID != "" {
		return waID
	}
	return userID
}

// AccountKey is the record key of account events: "acct/" and the phone number or WABA id. Account
// events are broadcast to every partition (see kafkax.Broadcast), so the key only names them.
func AccountKey(id string) string { return "acct/" + id }
