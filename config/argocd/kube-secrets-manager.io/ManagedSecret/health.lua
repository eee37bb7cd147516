-- Argo CD health check for ManagedSecret (kube-secrets-manager.io).
-- Healthy: the AWSCURRENT version is projected (Ready=True) and the last rotation did not fail.
-- Progressing: the operator has not observed this generation yet, or the secret waits for a value
-- or a source Secret. Degraded: any other Ready=False reason, or RotationFailed=True.
local hs = {}
if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile"
  return hs
end
if obj.metadata.generation ~= nil and obj.status.observedGeneration ~= obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(obj.metadata.generation)
  return hs
end
local ready = nil
local rotationFailed = nil
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then ready = c end
  if c.type == "RotationFailed" then rotationFailed = c end
end
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end
if ready.status == "True" then
  if rotationFailed ~= nil and rotationFailed.status == "True" then
    hs.status = "Degraded"
    hs.message = rotationFailed.message
    return hs
  end
  hs.status = "Healthy"
  hs.message = ready.message
  return hs
end
if ready.reason == "AwaitingValue" or ready.reason == "SourceNotFound" then
  hs.status = "Progressing"
else
  hs.status = "Degraded"
end
hs.message = ready.message
return hs
