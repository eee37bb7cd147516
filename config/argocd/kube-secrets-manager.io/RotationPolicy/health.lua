-- Argo CD health check for RotationPolicy (kube-secrets-manager.io): Healthy when the schedule is
-- valid (Ready=True), Degraded when it is not, Progressing until this generation is observed.
local hs = {}
if obj.status == nil or obj.status.conditions == nil or
   (obj.metadata.generation ~= nil and obj.status.observedGeneration ~= obj.metadata.generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to validate the policy"
  return hs
end
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then
    if c.status == "True" then
      hs.status = "Healthy"
    else
      hs.status = "Degraded"
    end
    hs.message = c.message
    return hs
  end
end
hs.status = "Progressing"
hs.message = "Waiting for the Ready condition"
return hs
