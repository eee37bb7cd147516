package awsauth

import (
	"encoding/xml"
	"net/http"
)

// ActionGetCallerIdentity is STS's GetCallerIdentity: who signed the request.
const ActionGetCallerIdentity = "GetCallerIdentity"

// STSAction is the Action parameter of a Query-protocol body, "" when the body does not decode or
// names none (ParseAssumeRoleWithWebIdentity then answers with STS's refusal).
func STSAction(body []byte) string {
	pairs, err := parseForm(string(body))
	if err != nil {
		return ""
	}
	for _, p := range pairs {
		if p[0] == "Action" {
			return p[1]
		}
	}
	return ""
}

// ParseGetCallerIdentity checks a GetCallerIdentity body: Action and Version 2011-06-15, each
// once (it takes no parameters; others are ignored, as STS ignores them).
func ParseGetCallerIdentity(body []byte) error {
	params, err := queryParams(body, nil)
	if err != nil {
		return err
	}
	return checkAction(params, ActionGetCallerIdentity)
}

// CallerIdentity is GetCallerIdentity's answer.
type CallerIdentity struct {
	Arn, UserID, Account, RequestID string
}

type xmlCallerIdentityResponse struct {
	XMLName xml.Name `xml:"GetCallerIdentityResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Result  struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	} `xml:"GetCallerIdentityResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

// WriteCallerIdentityResponse writes GetCallerIdentity's XML answer.
func WriteCallerIdentityResponse(w http.ResponseWriter, c CallerIdentity) {
	var x xmlCallerIdentityResponse
	x.Xmlns = STSNamespace
	x.Result.Arn, x.Result.UserID, x.Result.Account = c.Arn, c.UserID, c.Account
	x.RequestID = c.RequestID
	writeXML(w, http.StatusOK, c.RequestID, x)
}
