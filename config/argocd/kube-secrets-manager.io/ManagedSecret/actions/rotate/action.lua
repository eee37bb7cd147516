-- Rotate now: a new value of the rotate-requested-at annotation makes the operator start a
-- rotation Job from the secret's CronJob.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["kube-secrets-manager.io/rotate-requested-at"] = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
