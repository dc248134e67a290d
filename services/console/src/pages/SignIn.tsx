import { useEffect, useRef, useState } from "react";
import { useLocation } from "wouter";
import { Button, Center, Divider, Paper, PasswordInput, Stack, Text, Title } from "@mantine/core";
import { useConsoleConfig } from "../api/queries";
import { ErrorNotice, Loading } from "../components/States";
import { finishOidcSignIn, startOidcSignIn } from "../oidc";
import { useSession } from "../session";

export function SignIn() {
  const { signIn, refusal: error } = useSession();
  const config = useConsoleConfig();
  const [key, setKey] = useState("");
  const [oidcError, setOidcError] = useState<unknown>(null);
  const oidc = config.data?.oidc;
  return (
    <Center mih="100vh" p="md">
      <Paper withBorder shadow="sm" p="xl" w="100%" maw={420} component="main">
        <form
          onSubmit={(e) => {
            e.preventDefault();
            if (key.trim()) signIn({ token: key.trim(), kind: "apiKey" });
          }}
        >
          <Stack>
            <Title order={1} size="h2">
              Sign in to Valora
            </Title>
            <Text size="sm" c="dimmed">
              Use an API key of your tenant (it starts with <code>vk_</code>). It is kept for this tab only.
            </Text>
            {error ? <ErrorNotice title="Sign-in refused" error={error} /> : null}
            <PasswordInput
              label="API key"
              value={key}
              onChange={(e) => setKey(e.currentTarget.value)}
              autoComplete="off"
              required
              data-autofocus
            />
            <Button type="submit">Sign in</Button>
            {oidc && (
              <>
                <Divider label="or" />
                <Button
                  variant="default"
                  onClick={() => {
                    startOidcSignIn(oidc, "/").catch(setOidcError);
                  }}
                >
                  Sign in with your organisation
                </Button>
                <ErrorNotice title="Single sign-on failed" error={oidcError} />
              </>
            )}
          </Stack>
        </form>
      </Paper>
    </Center>
  );
}

/** Where the identity provider sends the browser back with a code. */
export function OidcCallback() {
  const config = useConsoleConfig();
  const { signIn } = useSession();
  const [, navigate] = useLocation();
  const [error, setError] = useState<unknown>(null);
  const started = useRef(false);
  useEffect(() => {
    const oidc = config.data?.oidc;
    if (!oidc || started.current) return;
    started.current = true;
    finishOidcSignIn(oidc, new URLSearchParams(location.search))
      .then(({ token, expiresAt, returnTo }) => {
        signIn({ token, kind: "oidc", expiresAt });
        navigate(returnTo, { replace: true });
      })
      .catch(setError);
  }, [config.data, signIn, navigate]);
  if (error || config.error)
    return (
      <Center mih="100vh" p="md">
        <ErrorNotice title="Sign-in failed" error={error ?? config.error} />
      </Center>
    );
  return <Loading label="Completing sign-in" />;
}
