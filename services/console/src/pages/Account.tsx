import { lazy, Suspense, useState } from "react";
import { Redirect, Route, Switch, useLocation } from "wouter";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import {
  Alert,
  Badge,
  Button,
  Card,
  Code,
  CopyButton,
  Group,
  Modal,
  MultiSelect,
  Select,
  SimpleGrid,
  Stack,
  Table,
  Tabs,
  Text,
  TextInput,
  Title,
} from "@mantine/core";
import { unwrap } from "../api/client";
import { useAssetClasses } from "../api/queries";
import { FormCard } from "../components/FormCard";
import { ErrorNotice, Loading, QueryState } from "../components/States";
import { int, money, when } from "../format";
import type { RoleName } from "../lib/types";
import { useSession } from "../session";

const UsageChart = lazy(() => import("../components/UsageChart"));

const ALL_ROLES: RoleName[] = ["admin", "manager", "viewer", "api", "auditor"];
const EVENTS = ["valuation.completed", "job.completed", "model.promoted"] as const;

/** A secret shown once, with a copy button, until dismissed. */
function SecretOnce({ secret, what, onClose }: { secret: string | null; what: string; onClose: () => void }) {
  return (
    <Modal
      opened={secret !== null}
      onClose={onClose}
      title={`Your new ${what}`}
      centered
      closeButtonProps={{ "aria-label": "Close" }}
    >
      <Stack>
        <Alert color="yellow">This is the only time it is shown: store it now.</Alert>
        <Code block data-testid="secret">
          {secret}
        </Code>
        <Group justify="flex-end">
          <CopyButton value={secret ?? ""}>
            {({ copied, copy }) => (
              <Button variant="default" onClick={copy}>
                {copied ? "Copied" : "Copy"}
              </Button>
            )}
          </CopyButton>
          <Button onClick={onClose}>Done</Button>
        </Group>
      </Stack>
    </Modal>
  );
}

function Keys() {
  const { api } = useSession();
  const qc = useQueryClient();
  const keys = useQuery({ queryKey: ["api-keys"], queryFn: () => unwrap(api.GET("/v1/api-keys")) });
  const classes = useAssetClasses();
  const [form, setForm] = useState<{ name: string; roles: string[]; assetClasses: string[] }>({
    name: "",
    roles: ["api"],
    assetClasses: [],
  });
  const [secret, setSecret] = useState<string | null>(null);
  const create = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST("/v1/api-keys", {
          body: {
            name: form.name,
            roles: form.roles as RoleName[],
            ...(form.assetClasses.length ? { assetClasses: form.assetClasses } : {}),
          },
        }),
      ),
    onSuccess: (k) => {
      setSecret(k.secret);
      setForm({ name: "", roles: ["api"], assetClasses: [] });
      void qc.invalidateQueries({ queryKey: ["api-keys"] });
    },
  });
  const revoke = useMutation({
    mutationFn: (id: string) => unwrap(api.DELETE("/v1/api-keys/{id}", { params: { path: { id } } })),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["api-keys"] }),
  });
  return (
    <Stack>
      <FormCard title="New API key" onSubmit={() => create.mutate()}>
        <SimpleGrid cols={{ base: 1, sm: 3 }}>
          <TextInput
            label="Name"
            value={form.name}
            onChange={(e) => setForm({ ...form, name: e.currentTarget.value })}
            required
          />
          <MultiSelect
            label="Roles"
            data={ALL_ROLES}
            value={form.roles}
            onChange={(roles) => setForm({ ...form, roles })}
            required
          />
          <MultiSelect
            label="Asset classes"
            placeholder="all"
            data={(classes.data ?? []).map((c) => c.name)}
            value={form.assetClasses}
            onChange={(assetClasses) => setForm({ ...form, assetClasses })}
          />
        </SimpleGrid>
        <Group mt="sm">
          <Button type="submit" loading={create.isPending}>
            Create key
          </Button>
        </Group>
        <ErrorNotice title="Key not created" error={create.error} />
      </FormCard>
      <SecretOnce secret={secret} what="API key" onClose={() => setSecret(null)} />
      <ErrorNotice title="Key not revoked" error={revoke.error} />
      <QueryState query={keys} empty={(d) => d.length === 0 && "No API key."}>
        {(list) => (
          <div className="table-scroll" tabIndex={0}>
            <Table striped data-testid="keys">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Name</Table.Th>
                  <Table.Th>Prefix</Table.Th>
                  <Table.Th>Roles</Table.Th>
                  <Table.Th>Classes</Table.Th>
                  <Table.Th>Last used</Table.Th>
                  <Table.Th>State</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {list.map((k) => (
                  <Table.Tr key={k.id}>
                    <Table.Td>{k.name}</Table.Td>
                    <Table.Td>
                      <Code>{k.prefix}</Code>
                    </Table.Td>
                    <Table.Td>{k.roles.join(", ")}</Table.Td>
                    <Table.Td>{k.assetClasses.length ? k.assetClasses.join(", ") : "all"}</Table.Td>
                    <Table.Td>{when(k.lastUsedAt)}</Table.Td>
                    <Table.Td>
                      {k.revokedAt ? (
                        <Badge variant="dot" color="gray">
                          revoked
                        </Badge>
                      ) : (
                        <Button
                          size="compact-sm"
                          color="red"
                          variant="light"
                          aria-label={`Revoke ${k.name}`}
                          onClick={() => {
                            if (confirm(`Revoke the key "${k.name}"? Clients using it are refused at once.`))
                              revoke.mutate(k.id);
                          }}
                        >
                          Revoke
                        </Button>
                      )}
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </div>
        )}
      </QueryState>
    </Stack>
  );
}

function Users() {
  const { api } = useSession();
  const qc = useQueryClient();
  const users = useQuery({ queryKey: ["users"], queryFn: () => unwrap(api.GET("/v1/users")) });
  const [form, setForm] = useState({ subject: "", email: "", role: "viewer" as RoleName });
  const put = useMutation({
    mutationFn: (u: typeof form) =>
      unwrap(
        api.PUT("/v1/users/{subject}", {
          params: { path: { subject: u.subject } },
          body: { role: u.role, ...(u.email ? { email: u.email } : {}) },
        }),
      ),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["users"] }),
  });
  const remove = useMutation({
    mutationFn: (subject: string) =>
      unwrap(api.DELETE("/v1/users/{subject}", { params: { path: { subject } } })),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["users"] }),
  });
  return (
    <Stack>
      <FormCard title="Add or change a user" onSubmit={() => put.mutate(form)}>
        <SimpleGrid cols={{ base: 1, sm: 3 }}>
          <TextInput
            label="Subject (OIDC sub)"
            value={form.subject}
            onChange={(e) => setForm({ ...form, subject: e.currentTarget.value })}
            required
          />
          <TextInput
            label="Email"
            value={form.email}
            onChange={(e) => setForm({ ...form, email: e.currentTarget.value })}
          />
          <Select
            label="Role"
            data={ALL_ROLES}
            value={form.role}
            onChange={(r) => setForm({ ...form, role: r ?? "viewer" })}
            allowDeselect={false}
          />
        </SimpleGrid>
        <Button type="submit" mt="sm" loading={put.isPending}>
          Save user
        </Button>
        <ErrorNotice error={put.error ?? remove.error} />
      </FormCard>
      <QueryState
        query={users}
        empty={(d) => d.length === 0 && "No user: people sign in with API keys only."}
      >
        {(list) => (
          <div className="table-scroll" tabIndex={0}>
            <Table striped>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Subject</Table.Th>
                  <Table.Th>Email</Table.Th>
                  <Table.Th>Role</Table.Th>
                  <Table.Th>Since</Table.Th>
                  <Table.Th />
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {list.map((u) => (
                  <Table.Tr key={u.subject}>
                    <Table.Td>{u.subject}</Table.Td>
                    <Table.Td>{u.email}</Table.Td>
                    <Table.Td>
                      <Select
                        aria-label={`Role of ${u.subject}`}
                        data={ALL_ROLES}
                        value={u.role}
                        onChange={(r) => r && put.mutate({ subject: u.subject, email: u.email, role: r })}
                        allowDeselect={false}
                        w={140}
                      />
                    </Table.Td>
                    <Table.Td>{when(u.createdAt)}</Table.Td>
                    <Table.Td>
                      <Button
                        size="compact-sm"
                        variant="light"
                        color="red"
                        onClick={() => remove.mutate(u.subject)}
                      >
                        Remove
                      </Button>
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </div>
        )}
      </QueryState>
    </Stack>
  );
}

function Deliveries({ id }: { id: string }) {
  const { api } = useSession();
  const d = useQuery({
    queryKey: ["deliveries", id],
    queryFn: () => unwrap(api.GET("/v1/webhooks/{id}/deliveries", { params: { path: { id } } })),
    refetchInterval: 10_000,
  });
  return (
    <QueryState query={d} empty={(x) => x.length === 0 && "No delivery yet."}>
      {(list) => (
        <Table fz="sm">
          <Table.Tbody>
            {list.map((x) => (
              <Table.Tr key={x.id}>
                <Table.Td>{x.eventType}</Table.Td>
                <Table.Td>
                  <Badge
                    variant="dot"
                    color={x.status === "delivered" ? "green" : x.status === "failed" ? "red" : "gray"}
                  >
                    {x.status}
                  </Badge>
                </Table.Td>
                <Table.Td>{x.attempts} attempts</Table.Td>
                <Table.Td>
                  {x.lastStatusCode || ""} {x.lastError}
                </Table.Td>
                <Table.Td>{when(x.deliveredAt ?? x.nextAttemptAt)}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
    </QueryState>
  );
}

function Webhooks() {
  const { api } = useSession();
  const qc = useQueryClient();
  const hooks = useQuery({ queryKey: ["webhooks"], queryFn: () => unwrap(api.GET("/v1/webhooks")) });
  const [form, setForm] = useState<{ url: string; events: string[] }>({ url: "", events: ["job.completed"] });
  const [secret, setSecret] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const create = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST("/v1/webhooks", {
          body: { url: form.url, events: form.events as (typeof EVENTS)[number][] },
        }),
      ),
    onSuccess: (h) => {
      setSecret(h.secret);
      void qc.invalidateQueries({ queryKey: ["webhooks"] });
    },
  });
  const remove = useMutation({
    mutationFn: (id: string) => unwrap(api.DELETE("/v1/webhooks/{id}", { params: { path: { id } } })),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["webhooks"] }),
  });
  return (
    <Stack>
      <FormCard title="New webhook" onSubmit={() => create.mutate()}>
        <SimpleGrid cols={{ base: 1, sm: 2 }}>
          <TextInput
            label="URL"
            type="url"
            value={form.url}
            onChange={(e) => setForm({ ...form, url: e.currentTarget.value })}
            required
          />
          <MultiSelect
            label="Events"
            data={[...EVENTS]}
            value={form.events}
            onChange={(events) => setForm({ ...form, events })}
            required
          />
        </SimpleGrid>
        <Button type="submit" mt="sm" loading={create.isPending}>
          Register
        </Button>
        <ErrorNotice title="Webhook refused" error={create.error ?? remove.error} />
      </FormCard>
      <SecretOnce secret={secret} what="webhook signing secret" onClose={() => setSecret(null)} />
      <QueryState query={hooks} empty={(d) => d.length === 0 && "No webhook."}>
        {(list) => (
          <Stack>
            {list.map((h) => (
              <Card withBorder key={h.id}>
                <Group justify="space-between">
                  <Text size="sm">
                    <Code>{h.url}</Code> · {h.events.join(", ")}
                  </Text>
                  <Group gap="xs">
                    <Button
                      size="compact-sm"
                      variant="default"
                      onClick={() => setOpen(open === h.id ? null : h.id)}
                    >
                      {open === h.id ? "Hide deliveries" : "Deliveries"}
                    </Button>
                    <Button size="compact-sm" variant="light" color="red" onClick={() => remove.mutate(h.id)}>
                      Delete
                    </Button>
                  </Group>
                </Group>
                {open === h.id && <Deliveries id={h.id} />}
              </Card>
            ))}
          </Stack>
        )}
      </QueryState>
    </Stack>
  );
}

function Audit() {
  const { api } = useSession();
  const [action, setAction] = useState("");
  const [before, setBefore] = useState("");
  const audit = useQuery({
    queryKey: ["audit", action, before],
    queryFn: () =>
      unwrap(
        api.GET("/v1/audit", {
          params: {
            query: {
              limit: 200,
              ...(action ? { action } : {}),
              ...(before ? { before: new Date(before).toISOString() } : {}),
            },
          },
        }),
      ),
  });
  return (
    <Stack>
      <Group align="flex-end">
        <TextInput
          label="Action"
          placeholder="e.g. api_key.create"
          value={action}
          onChange={(e) => setAction(e.currentTarget.value)}
        />
        <TextInput
          label="Before"
          type="datetime-local"
          value={before}
          onChange={(e) => setBefore(e.currentTarget.value)}
        />
      </Group>
      <QueryState query={audit} empty={(d) => d.length === 0 && "No audit entry matches."}>
        {(list) => (
          <div className="table-scroll" tabIndex={0}>
            <Table striped fz="sm" data-testid="audit">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>When</Table.Th>
                  <Table.Th>Actor</Table.Th>
                  <Table.Th>Action</Table.Th>
                  <Table.Th>Target</Table.Th>
                  <Table.Th>IP</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {list.map((e) => (
                  <Table.Tr key={e.id}>
                    <Table.Td>{when(e.at)}</Table.Td>
                    <Table.Td>{e.actor}</Table.Td>
                    <Table.Td>
                      <Code>{e.action}</Code>
                    </Table.Td>
                    <Table.Td>{e.target}</Table.Td>
                    <Table.Td>{e.ip}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </div>
        )}
      </QueryState>
    </Stack>
  );
}

function Usage() {
  const { api } = useSession();
  const usage = useQuery({
    queryKey: ["usage"],
    queryFn: () => unwrap(api.GET("/v1/usage")),
    refetchInterval: 30_000,
  });
  return (
    <QueryState query={usage}>
      {(u) => (
        <Card withBorder>
          <Text size="sm" mb="xs">
            {int(u.total)} valuations from {u.from} to {u.to} on the {u.plan.name} plan
            {u.plan.monthlyValuations > 0
              ? ` (${int(u.plan.monthlyValuations)} a month)`
              : " (no monthly cap)"}
          </Text>
          {u.days.length === 0 ? (
            <Text c="dimmed" size="sm">
              No usage this period.
            </Text>
          ) : (
            <Suspense fallback={<Loading />}>
              <UsageChart days={u.days} />
            </Suspense>
          )}
        </Card>
      )}
    </QueryState>
  );
}

function Plan() {
  const { api } = useSession();
  const qc = useQueryClient();
  const billing = useQuery({ queryKey: ["billing"], queryFn: () => unwrap(api.GET("/v1/billing")) });
  const plans = useQuery({ queryKey: ["plans"], queryFn: () => unwrap(api.GET("/v1/plans")) });
  const change = useMutation({
    mutationFn: (plan: string) => unwrap(api.PUT("/v1/billing/plan", { body: { plan } })),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: ["billing"] });
      void qc.invalidateQueries({ queryKey: ["tenant"] });
    },
  });
  return (
    <QueryState query={plans}>
      {(list) => (
        <Stack>
          <ErrorNotice title="Plan not changed" error={change.error ?? billing.error} />
          {billing.data && (
            <Text size="sm">
              Current plan: <b>{billing.data.plan.title}</b>
              {billing.data.billingEnabled
                ? ` · subscription ${billing.data.subscriptionStatus ?? "none"}`
                : " · billing not enabled"}
            </Text>
          )}
          <SimpleGrid cols={{ base: 1, sm: 3 }}>
            {list.map((p) => {
              const current = billing.data?.plan.name === p.name;
              return (
                <Card withBorder key={p.name}>
                  <Title order={3} size="h4">
                    {p.title}
                  </Title>
                  <Text size="xl" fw={700}>
                    {money(p.priceCents / 100)} / month
                  </Text>
                  <Text size="sm">
                    {p.monthlyValuations > 0
                      ? `${int(p.monthlyValuations)} valuations a month`
                      : "unlimited valuations"}{" "}
                    · {p.rate.perSecond}/s
                    {p.bulkJobs ? ` · bulk jobs to ${int(p.maxJobRows)} rows` : " · no bulk jobs"}
                  </Text>
                  <Button
                    mt="sm"
                    disabled={current}
                    variant={current ? "light" : "filled"}
                    loading={change.isPending && change.variables === p.name}
                    onClick={() => change.mutate(p.name)}
                  >
                    {current ? "Current plan" : `Switch to ${p.title}`}
                  </Button>
                </Card>
              );
            })}
          </SimpleGrid>
        </Stack>
      )}
    </QueryState>
  );
}

const TABS = [
  { path: "keys", label: "API keys", roles: ["admin"], element: <Keys /> },
  { path: "users", label: "Users", roles: ["admin"], element: <Users /> },
  { path: "webhooks", label: "Webhooks", roles: ["admin", "manager"], element: <Webhooks /> },
  { path: "audit", label: "Audit log", roles: ["admin", "auditor"], element: <Audit /> },
  { path: "usage", label: "Usage", roles: ["admin", "viewer"], element: <Usage /> },
  { path: "plan", label: "Plan", roles: ["admin"], element: <Plan /> },
] as const;

export default function AccountPage() {
  const { can } = useSession();
  const [location, navigate] = useLocation();
  const tabs = TABS.filter((t) => can(...t.roles));
  const current = location.split("/")[2] ?? tabs[0]?.path;
  return (
    <Stack>
      <Title order={2}>Account</Title>
      <Tabs value={current ?? null} onChange={(v) => v && navigate(`/account/${v}`)}>
        <Tabs.List>
          {tabs.map((t) => (
            <Tabs.Tab key={t.path} value={t.path}>
              {t.label}
            </Tabs.Tab>
          ))}
        </Tabs.List>
      </Tabs>
      <Switch>
        <Route path="/account">{tabs[0] ? <Redirect to={`/account/${tabs[0].path}`} replace /> : null}</Route>
        {tabs.map((t) => (
          <Route key={t.path} path={`/account/${t.path}`}>
            {t.element}
          </Route>
        ))}
      </Switch>
    </Stack>
  );
}
