-- Argo CD health check of trailkeeper's Trail and LogRetention (argocd-cm:
-- resource.customizations.health.trailkeeper.io_Trail and ..._LogRetention; see README, GitOps).
-- tests/test_argocd_health.py runs it on the status the operator writes for every outcome.
local hs = {status = "Progressing", message = "waiting for the operator's first pass"}
local meta = obj.metadata or {}
if meta.deletionTimestamp ~= nil then
  hs.message = "deleting: the operator is releasing what deletionPolicy says"
  return hs
end
local status = obj.status
if status == nil or status.conditions == nil then
  return hs
end
if status.observedGeneration == nil or status.observedGeneration ~= meta.generation then
  hs.message = "the operator has not acted on the latest spec yet"
  return hs
end
local conditions = {}
for _, c in ipairs(status.conditions) do
  conditions[c.type] = c
end
local ready = conditions["Ready"]
if ready == nil then
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ""
  return hs
end
if ready.status == "False" then
  -- Stalled (a bad spec, a conflict, drift left alone) and failures being retried (Reconciling) alike:
  -- the object is not where its spec puts it, and the reason says why.
  hs.status = "Degraded"
  hs.message = (ready.reason or "") .. ": " .. (ready.message or "")
  return hs
end
hs.message = ready.message or hs.message
return hs
