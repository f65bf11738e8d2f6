-- Argo CD health of a baton.dev Rollout, from what the controller writes: the conditions of
-- the observed generation (Ready, Stalled, InvalidSpec, Progressing), the phase and the message.
local hs = {}

local function condition(status, type)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local status = obj.status
local generation = obj.metadata.generation
if status == nil or status.observedGeneration == nil or
    (generation ~= nil and status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the baton controller to observe generation " .. tostring(generation)
  return hs
end

local invalid = condition(status, "InvalidSpec")
if invalid ~= nil and invalid.status == "True" then
  hs.status = "Degraded"
  hs.message = invalid.message
  return hs
end

local phase = status.phase
local message = status.message
local progressing = condition(status, "Progressing")
if progressing ~= nil and progressing.message ~= nil and progressing.message ~= "" then
  message = progressing.message
end

if phase == "RolledBack" or phase == "RollingBack" or phase == "Degraded" then
  hs.status = "Degraded"
  hs.message = message
  return hs
end

local stalled = condition(status, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.message
  return hs
end

if phase == "Paused" then
  hs.status = "Suspended"
  hs.message = message
  return hs
end

local ready = condition(status, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message
  return hs
end

hs.status = "Progressing"
hs.message = message
return hs
